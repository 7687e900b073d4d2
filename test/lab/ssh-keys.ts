// Ed25519 keys in OpenSSH's own formats, made with node:crypto so the lab needs no ssh-keygen.
//
// The private key is the unencrypted "openssh-key-v1" format that `ssh-keygen -t ed25519`
// writes (PROTOCOL.key in OpenSSH's sources); both OpenSSH and ssh2 (node-ssh) read it.
// The public line is the "ssh-ed25519 AAAA... comment" of authorized_keys and known_hosts.

import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';

export interface OpenSshKeyPair {
  /** "-----BEGIN OPENSSH PRIVATE KEY-----\n...", ends with a newline. */
  privateKey: string;
  /** "ssh-ed25519 AAAA... comment" (no newline). */
  publicKeyLine: string;
  /** "SHA256:..." as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

const KEY_TYPE = 'ssh-ed25519';

function sshString(data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

export function generateEd25519KeyPair(comment = ''): OpenSshKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const jwk = privateKey.export({ format: 'jwk' });
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const seed = Buffer.from(jwk.d!, 'base64url');

  const publicBlob = Buffer.concat([sshString(KEY_TYPE), sshString(pub)]);
  const check = randomBytes(4).readUInt32BE();
  let secret = Buffer.concat([
    uint32(check),
    uint32(check),
    sshString(KEY_TYPE),
    sshString(pub),
    sshString(Buffer.concat([seed, pub])),
    sshString(comment),
  ]);
  // Padded with 1, 2, 3, ... to the cipher block size, which is 8 for "none".
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);

  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    uint32(1),
    sshString(publicBlob),
    sshString(secret),
  ]);
  const b64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
  const privatePem = `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}-----END OPENSSH PRIVATE KEY-----\n`;

  const publicKeyLine = `${KEY_TYPE} ${publicBlob.toString('base64')}${comment ? ` ${comment}` : ''}`;
  const fingerprint = `SHA256:${createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '')}`;
  return { privateKey: privatePem, publicKeyLine, fingerprint };
}
