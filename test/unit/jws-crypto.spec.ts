/**
 * The signature step done with Node's crypto (src/envelope/jws-crypto.ts): for every
 * algorithm, our JWS verify with jose and jose's verify with us (what a partner on another
 * library sees), and wrong keys, key types and tampering fail.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { expect } from 'chai';
import { CompactSign, compactVerify } from 'jose';
import type { Partner, SigningAlg } from '../../src/config/load.js';
import { algFor, describeKey, keyFitsAlg, SIGNING_ALGS } from '../../src/envelope/jws-crypto.js';
import { MESSAGE_TYP, signJws } from '../../src/envelope/sign.js';
import { verifyJws } from '../../src/envelope/verify.js';
import { IcrosError } from '../../src/errors.js';

const pairs: Record<SigningAlg, () => { privateKey: KeyObject; publicKey: KeyObject }> = {
  PS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ES256: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  EdDSA: () => generateKeyPairSync('ed25519'),
};

function partnerWith(alg: SigningAlg, publicKey: KeyObject): Partner {
  return { country: 'DE', algorithms: [alg], signingKeys: [{ kid: 'k1', publicKey }] } as unknown as Partner;
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return err instanceof IcrosError ? err.code : `not an IcrosError: ${String(err)}`;
  }
  return 'verified';
}

describe('JWS signatures with Node crypto', () => {
  for (const alg of ['PS256', 'ES256', 'EdDSA'] as const) {
    describe(alg, () => {
      const { privateKey, publicKey } = pairs[alg]();
      const signer = { alg, kid: 'k1', key: privateKey };
      const payload = { v: 1, note: 'été ✓' };

      it('signs what jose verifies, with the header alg, typ, kid', async () => {
        const jws = await signJws(payload, signer, MESSAGE_TYP);
        const { payload: bytes, protectedHeader } = await compactVerify(jws, publicKey, {
          algorithms: [alg],
        });
        expect(protectedHeader).to.deep.equal({ alg, typ: MESSAGE_TYP, kid: 'k1' });
        expect(JSON.parse(new TextDecoder().decode(bytes))).to.deep.equal(payload);
      });

      it('verifies what jose signs, and returns the payload as signed', async () => {
        const bytes = new TextEncoder().encode('{"v":1}');
        const jws = await new CompactSign(bytes)
          .setProtectedHeader({ alg, typ: MESSAGE_TYP, kid: 'k1' })
          .sign(privateKey);
        const v = await verifyJws(jws, partnerWith(alg, publicKey), MESSAGE_TYP);
        expect(v.payload).to.deep.equal({ v: 1 });
        expect(Buffer.from(v.payloadBytes).toString()).to.equal('{"v":1}');
      });

      it('refuses a tampered payload, a tampered signature and another key', async () => {
        const jws = await signJws(payload, signer, MESSAGE_TYP);
        const [h, p, s] = jws.split('.') as [string, string, string];
        const other = Buffer.from(JSON.stringify({ v: 2 })).toString('base64url');
        const partner = partnerWith(alg, publicKey);
        expect(await code(verifyJws(`${h}.${other}.${s}`, partner, MESSAGE_TYP))).to.equal(
          'JWS_SIGNATURE_INVALID',
        );
        const flipped = Buffer.from(s, 'base64url');
        flipped[5] = (flipped[5] ?? 0) ^ 1;
        expect(
          await code(verifyJws(`${h}.${p}.${flipped.toString('base64url')}`, partner, MESSAGE_TYP)),
        ).to.equal('JWS_SIGNATURE_INVALID');
        const stranger = partnerWith(alg, pairs[alg]().publicKey);
        expect(await code(verifyJws(jws, stranger, MESSAGE_TYP))).to.equal('JWS_SIGNATURE_INVALID');
        expect(await code(verifyJws(`${h}.${p}.`, partner, MESSAGE_TYP))).to.equal('JWS_SIGNATURE_INVALID');
      });
    });
  }

  it('names the one algorithm a key fits, private or public, and none for other keys', () => {
    expect(SIGNING_ALGS).to.deep.equal(['PS256', 'ES256', 'EdDSA']);
    for (const alg of SIGNING_ALGS) {
      const { privateKey, publicKey } = pairs[alg]();
      expect(algFor(privateKey), alg).to.equal(alg);
      expect(algFor(publicKey), alg).to.equal(alg);
    }
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
    expect(algFor(p384)).to.equal(undefined);
    expect(algFor(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey)).to.equal(undefined);
    expect(algFor(generateKeyPairSync('ed448').publicKey)).to.equal(undefined);
    expect(describeKey(p384)).to.equal('EC secp384r1');
    expect(describeKey(pairs.PS256().privateKey)).to.equal('RSA 2048-bit');
    expect(describeKey(pairs.EdDSA().publicKey)).to.equal('ed25519');
  });

  it('never uses a key with an algorithm it does not fit', async () => {
    const rsa = pairs.PS256();
    const ec = pairs.ES256();
    expect(keyFitsAlg(rsa.publicKey, 'PS256')).to.equal(true);
    expect(keyFitsAlg(rsa.publicKey, 'ES256')).to.equal(false);
    expect(keyFitsAlg(ec.publicKey, 'PS256')).to.equal(false);
    expect(keyFitsAlg(ec.publicKey, 'EdDSA')).to.equal(false);
    expect(keyFitsAlg(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey, 'PS256')).to.equal(
      false,
    );
    expect(keyFitsAlg(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey, 'ES256')).to.equal(false);
    // A message claiming ES256 towards a partner registered with an RSA key does not verify.
    const jws = await signJws({ v: 1 }, { alg: 'ES256', kid: 'k1', key: ec.privateKey }, MESSAGE_TYP);
    expect(await code(verifyJws(jws, partnerWith('ES256', rsa.publicKey), MESSAGE_TYP))).to.equal(
      'JWS_SIGNATURE_INVALID',
    );
    const refused = await signJws(
      { v: 1 },
      { alg: 'PS256', kid: 'k1', key: ec.privateKey },
      MESSAGE_TYP,
    ).then(
      () => 'signed',
      (err: Error) => err.message,
    );
    expect(refused).to.equal('the signing key does not fit PS256');
  });
});
