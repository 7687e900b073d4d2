// Host-side preconditions of a restart that no config checker sees.

export const DHCPD_DEFAULTS_PATH = "/etc/default/isc-dhcp-server";

/**
 * /etc/default/isc-dhcp-server belongs to the host's administrator: it names host-local
 * interfaces, which the API does not model. Debian's init script starts dhcpd -4 only when
 * INTERFACESv4 is set; with both variables empty it also starts dhcpd -6, which fails without a
 * dhcpd6.conf, and without the file it starts nothing and still exits 0. So a restart is refused
 * before any file is swapped, with the fix in the message.
 */
export function dhcpdDefaultsProblem(text: string | undefined, hostName: string): string | undefined {
  if (text === undefined) {
    return `${DHCPD_DEFAULTS_PATH} does not exist on DDIHost ${hostName}: Debian's isc-dhcp-server init script then starts nothing; create it with INTERFACESv4="<interface that carries the failover address>"`;
  }
  // The script sources the file: the last assignment wins; the old INTERFACES still counts for v4.
  const vars = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^\s*(?:export\s+)?(INTERFACESv4|INTERFACES)=(.*)$/.exec(line);
    if (m) vars.set(m[1]!, unquoteShellWord(m[2]!));
  }
  const v4 = vars.get("INTERFACESv4") || vars.get("INTERFACES");
  if (!v4 || v4.trim() === "") {
    return (
      `INTERFACESv4 is empty in ${DHCPD_DEFAULTS_PATH} on DDIHost ${hostName}: Debian's init script would not start dhcpd for IPv4 ` +
      `(or would also start dhcpd -6, which fails); set INTERFACESv4="<interface that carries the failover address>" there`
    );
  }
  return undefined;
}

function unquoteShellWord(raw: string): string {
  const value = raw.replace(/\s+#.*$/, "").trim();
  const quoted = /^"([^"]*)"|^'([^']*)'/.exec(value);
  if (quoted) return quoted[1] ?? quoted[2] ?? "";
  return value.split(/\s/)[0] ?? "";
}
