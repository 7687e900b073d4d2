// Start and remove a host lab by hand (for a demo, a benchmark, or poking at a failing test).
//
//   npx tsx test/lab/cli.ts up [--hosts 2] [--name manual]   start it, print the inventory JSON
//   npx tsx test/lab/cli.ts list                              labs that exist now
//   npx tsx test/lab/cli.ts down [--name manual | --all]      remove it (or every lab)
//
// `up` writes .lab/<name>/ in the repository (gitignored): id_ed25519 (0600), known_hosts,
// ssh_config and inventory.json. Then: ssh -F .lab/<name>/ssh_config h1

import { writeLabSshFiles } from './ssh-files.js';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LAB_LABEL, removeLabs, startLab } from './lab.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function usage(): never {
  console.error('usage: tsx test/lab/cli.ts up [--hosts N] [--name NAME] | list | down [--name NAME | --all]');
  process.exit(2);
}

async function up(hosts: number, name: string): Promise<void> {
  const existing = await listLabs();
  if (existing.includes(name)) {
    throw new Error(`a lab named "${name}" exists; remove it first: npx tsx test/lab/cli.ts down --name ${name}`);
  }
  const started = Date.now();
  const lab = await startLab({ hosts, name, persistent: true });
  const dir = join(repoRoot, '.lab', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { keyPath, knownHostsPath, sshConfigPath } = writeLabSshFiles(lab, dir);
  const inventory = {
    name: lab.name,
    image: lab.image,
    network: {
      name: lab.network.name,
      subnet: lab.network.subnet,
      gateway: lab.network.gateway,
      spareAddresses: [0, 1, 2, 3].map((i) => lab.network.spare(i)),
    },
    users: lab.users,
    privateKeyPath: keyPath,
    knownHostsPath,
    sshConfigPath,
    hosts: lab.hosts.map((h, i) => ({
      alias: `h${i + 1}`,
      name: h.name,
      container: h.containerId,
      address: h.address,
      sshPort: h.sshPort,
      interface: h.interface,
      hostKeyLine: h.hostKeyLine,
      hostKeyFingerprint: h.hostKeyFingerprint,
    })),
  };
  writeFileSync(join(dir, 'inventory.json'), `${JSON.stringify(inventory, null, 2)}\n`);
  console.log(JSON.stringify(inventory, null, 2));
  const rel = relative(process.cwd(), sshConfigPath) || sshConfigPath;
  console.error(`lab "${name}" up in ${((Date.now() - started) / 1000).toFixed(1)} s. Try: ssh -F ${rel} h1`);
  console.error(`remove it with: npx tsx test/lab/cli.ts down --name ${name}`);
}

async function listLabs(): Promise<string[]> {
  const { getContainerRuntimeClient } = await import('testcontainers');
  const d = (await getContainerRuntimeClient()).container.dockerode;
  const nets = await d.listNetworks({ filters: { label: [LAB_LABEL] } });
  return [...new Set(nets.map((n) => n.Labels?.[LAB_LABEL]).filter((n): n is string => !!n))].sort();
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      hosts: { type: 'string', default: '2' },
      name: { type: 'string', default: 'manual' },
      all: { type: 'boolean', default: false },
    },
  });
  const [command, ...rest] = positionals;
  if (rest.length > 0) usage();
  switch (command) {
    case 'up':
      await up(Number(values.hosts), values.name);
      break;
    case 'list':
      for (const name of await listLabs()) console.log(name);
      break;
    case 'down': {
      const removed = await removeLabs(values.all ? { all: true } : { name: values.name });
      const names = values.all ? removed : [values.name];
      for (const name of names) rmSync(join(repoRoot, '.lab', name), { recursive: true, force: true });
      if (values.all) rmSync(join(repoRoot, '.lab'), { recursive: true, force: true });
      console.error(removed.length > 0 ? `removed: ${[...new Set(removed)].join(', ')}` : 'nothing to remove');
      break;
    }
    default:
      usage();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
