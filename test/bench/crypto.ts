import { generateKeyPairSync } from 'node:crypto';
import type { Partner } from '../../src/config/load.js';
import { MESSAGE_TYP, signJws } from '../../src/envelope/sign.js';
import { verifyJws } from '../../src/envelope/verify.js';
import { type Figure, ratePerSecond } from './report.js';

/**
 * PS256 with a 2048-bit RSA key, as the dev PKI issues, through the gateway's own signing and
 * checking code (src/envelope): the crypto ceiling of a gateway on this machine.
 */
export async function benchCrypto(): Promise<Figure[]> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const payload = { v: 1, pad: 'x'.repeat(1500) };
  const signer = { alg: 'PS256' as const, kid: 'bench', key: privateKey };
  const partner = { country: 'XX', algorithms: ['PS256'], signingKeys: [{ kid: 'bench', publicKey }] };
  const sign = () => signJws(payload, signer, MESSAGE_TYP);
  const jws = await sign();
  const signs = await ratePerSecond(sign, 2000, 4);
  const verifies = await ratePerSecond(
    () => verifyJws(jws, partner as unknown as Partner, MESSAGE_TYP),
    2000,
    4,
  );
  return [
    { name: 'ps256.sign', value: signs, unit: 'ops/s (4 in flight)' },
    { name: 'ps256.verify', value: verifies, unit: 'ops/s (4 in flight)' },
  ];
}
