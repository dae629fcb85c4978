import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Partner, SigningAlg } from '../../src/config/load.js';
import { MESSAGE_TYP, signJws } from '../../src/envelope/sign.js';
import { verifyJws } from '../../src/envelope/verify.js';
import { type Figure, ratePerSecond } from './report.js';

const KEYS: Record<SigningAlg, () => { privateKey: KeyObject; publicKey: KeyObject }> = {
  PS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ES256: () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }),
  EdDSA: () => generateKeyPairSync('ed25519'),
};

/**
 * Signatures and checks per second for each algorithm a gateway signs with (RSA-2048 for
 * PS256, P-256, Ed25519), through the gateway's own signing and checking code (src/envelope):
 * the crypto ceiling of a gateway on this machine.
 */
export async function benchCrypto(): Promise<Figure[]> {
  const payload = { v: 1, pad: 'x'.repeat(1500) };
  const figures: Figure[] = [];
  for (const alg of Object.keys(KEYS) as SigningAlg[]) {
    const { privateKey, publicKey } = KEYS[alg]();
    const signer = { alg, kid: 'bench', key: privateKey };
    const partner = { country: 'XX', algorithms: [alg], signingKeys: [{ kid: 'bench', publicKey }] };
    const sign = () => signJws(payload, signer, MESSAGE_TYP);
    const jws = await sign();
    const signs = await ratePerSecond(sign, 2000, 4);
    const verifies = await ratePerSecond(
      () => verifyJws(jws, partner as unknown as Partner, MESSAGE_TYP),
      2000,
      4,
    );
    const name = alg.toLowerCase();
    figures.push(
      { name: `${name}.sign`, value: signs, unit: 'ops/s (4 in flight)' },
      { name: `${name}.verify`, value: verifies, unit: 'ops/s (4 in flight)' },
    );
  }
  return figures;
}
