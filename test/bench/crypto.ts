import { generateKeyPairSync } from 'node:crypto';
import { CompactSign, compactVerify } from 'jose';
import { type Figure, ratePerSecond } from './report.js';

/** PS256 with a 2048-bit RSA key, as the dev PKI issues: the crypto ceiling of a gateway. */
export async function benchCrypto(): Promise<Figure[]> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const payload = new TextEncoder().encode(JSON.stringify({ v: 1, pad: 'x'.repeat(1500) }));
  const sign = () => new CompactSign(payload).setProtectedHeader({ alg: 'PS256' }).sign(privateKey);
  const jws = await sign();
  const signs = await ratePerSecond(sign, 2000, 4);
  const verifies = await ratePerSecond(
    () => compactVerify(jws, publicKey, { algorithms: ['PS256'] }),
    2000,
    4,
  );
  return [
    { name: 'ps256.sign', value: signs, unit: 'ops/s (4 in flight)' },
    { name: 'ps256.verify', value: verifies, unit: 'ops/s (4 in flight)' },
  ];
}
