// Small IPv4 arithmetic for validation and rendering (dhcpd wants "subnet A netmask M").

export function ipv4ToNumber(ip: string): number {
  return ip.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

export function numberToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

export function parseIpv4Cidr(cidr: string): { address: string; prefix: number; network: string; netmask: string } {
  const [address, prefixText] = cidr.split("/");
  const prefix = Number(prefixText);
  const size = 2 ** (32 - prefix);
  const network = numberToIpv4(Math.floor(ipv4ToNumber(address!) / size) * size);
  const netmask = numberToIpv4(2 ** 32 - size);
  return { address: address!, prefix, network, netmask };
}

export function ipv4InCidr(ip: string, cidr: string): boolean {
  const { network, prefix } = parseIpv4Cidr(cidr);
  const size = 2 ** (32 - prefix);
  const n = ipv4ToNumber(ip);
  const start = ipv4ToNumber(network);
  return n >= start && n < start + size;
}
