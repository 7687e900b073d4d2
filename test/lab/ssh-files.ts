// The files a person needs to reach a lab's hosts by hand: `ssh -F DIR/ssh_config h1`.
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from './lab.js';

export interface LabSshFiles {
  keyPath: string;
  knownHostsPath: string;
  sshConfigPath: string;
}

/** Writes the private key (0600), known_hosts and an ssh_config naming the hosts h1, h2, … */
export function writeLabSshFiles(lab: Lab, dir: string): LabSshFiles {
  const keyPath = join(dir, 'id_ed25519');
  writeFileSync(keyPath, lab.privateKey, { mode: 0o600 });
  chmodSync(keyPath, 0o600);
  writeFileSync(join(dir, 'id_ed25519.pub'), `${lab.publicKeyLine}\n`);
  const knownHostsPath = join(dir, 'known_hosts');
  writeFileSync(knownHostsPath, lab.knownHosts);
  const sshConfigPath = join(dir, 'ssh_config');
  const config = lab.hosts.map((h, i) =>
    [
      `Host h${i + 1} ${h.name} ${h.address}`,
      `  HostName ${h.sshHost}`,
      `  Port ${h.sshPort}`,
      '  User root',
      `  IdentityFile ${keyPath}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${knownHostsPath}`,
      '  StrictHostKeyChecking yes',
      '',
    ].join('\n'),
  );
  writeFileSync(sshConfigPath, config.join('\n'));
  return { keyPath, knownHostsPath, sshConfigPath };
}
