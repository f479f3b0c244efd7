/**
 * The install commands for the portable release, written once: the
 * release's INSTALL text is made from them, and a test checks that the
 * README gives the same commands.
 *
 * Build-time only (used by `lib/release/mod.ts` and the tests).
 *
 * @module
 */

/** The release's file name without `.tar.gz`. */
export function releaseName(version: string, platform: string): string {
  return `lvalert_listenMP-${version}-${platform}`;
}

/** `linux-x64`, `linux-arm64`, ... for this machine. */
export function hostPlatform(): string {
  const arch = ({ x86_64: "x64", aarch64: "arm64" } as Record<string, string>)[Deno.build.arch];
  return `${Deno.build.os}-${arch ?? Deno.build.arch}`;
}

/** Installing the release under /opt and on the PATH (as root, in the download folder). */
export function installCommands(version: string, platform: string): string[] {
  const name = releaseName(version, platform);
  return [
    `sha256sum -c ${name}.tar.gz.sha256`,
    `mkdir -p /opt/lvalertMP-${version}`,
    `tar -xzf ${name}.tar.gz -C /opt/lvalertMP-${version} --strip-components=1`,
    `ln -sfn lvalertMP-${version} /opt/lvalertMP`,
    "ln -sf /opt/lvalertMP/lvalert_listenMP /usr/local/bin/lvalert_listenMP",
    "lvalert_listenMP -w",
  ];
}

/** Running it as a systemd service (as root), after {@link installCommands}. */
export function serviceCommands(): string[] {
  return [
    "useradd --system --user-group --home-dir /var/lib/lvalertMP --shell /usr/sbin/nologin lvalert",
    "install -d -m 755 /etc/lvalertMP",
    "install -d -m 750 -o lvalert -g lvalert /var/log/lvalertMP",
    "cp /opt/lvalertMP/etc/lvalert_listenMP-example.ini /etc/lvalertMP/listener.ini",
    "cp /opt/lvalertMP/etc/childConfig-example.ini /etc/lvalertMP/",
    "sed -i 's|^log_directory = .*|log_directory = /var/log/lvalertMP|' " +
    "/etc/lvalertMP/childConfig-example.ini",
    "install -m 600 -o lvalert -g lvalert /dev/null /etc/lvalertMP/netrc",
    "cp /opt/lvalertMP/etc/lvalert_listenMP.service /etc/systemd/system/",
  ];
}

/** Starting the service once configured. */
export const START_COMMANDS = [
  "runuser -u lvalert -- lvalert_listenMP -c /etc/lvalertMP/listener.ini --check-config",
  "systemctl daemon-reload && systemctl enable --now lvalert_listenMP",
];

/** The INSTALL text at the top of the release. */
export function installText(version: string, platform: string, denoVersion: string): string {
  const indent = (lines: string[]) => lines.map((line) => `    ${line}`).join("\n");
  const title = `lvalert_listenMP ${version} (${platform}), portable release`;
  return `${title}
${"=".repeat(title.length)}

This folder runs as it is, wherever it is unpacked and by any user: it
carries the Deno ${denoVersion} runtime (runtime/deno), the program (main.ts,
lib/, workers/, etc/), its npm packages (node_modules/) and deno.lock. It
needs no node, npm or deno on the machine, and no network to start (the XMPP
server aside): a ${platform} machine with glibc is enough. The folder may be
read-only.

Install under /opt and put the command on the PATH (as root, in the folder
holding the archive and its .sha256 file):

${indent(installCommands(version, platform))}

Run it as a systemd service:

${indent(serviceCommands())}

Then edit /etc/lvalertMP/listener.ini (its children, nodes, recipients and
childConfig), put the account's line in /etc/lvalertMP/netrc
("machine SERVER login USER password PASSWORD"), set User, -a and -s in
/etc/systemd/system/lvalert_listenMP.service, and start it:

${indent(START_COMMANDS)}

Upgrade: unpack the new version beside the old one and point the
/opt/lvalertMP link at it (ln -sfn lvalertMP-NEW /opt/lvalertMP), then
systemctl restart lvalert_listenMP. Uninstall: stop and disable the
service, remove /opt/lvalertMP*, /usr/local/bin/lvalert_listenMP and the
unit file.

Start time: the runtime transpiles the program at each start unless it can
keep a cache. The cache goes to cache/ in this folder when that is writable
by the user running it (root's "lvalert_listenMP -w" above fills it, and
other users read it), else nowhere; for a read-only install set DENO_DIR
to a writable folder (in the unit: CacheDirectory=lvalertMP and
Environment=DENO_DIR=/var/cache/lvalertMP).

The install folder's path must hold only A-Z a-z 0-9 and . _ / + @ , = : ~ -
(no spaces); the launcher says so and exits 78 otherwise.

The launcher (lvalert_listenMP) runs:
  runtime/deno run --cached-only --frozen --unstable-worker-options
    <the listener's permission flags> --config deno.json main.ts ARGS...
Companion tools: lvalert_listenMP send|command|admin|ctl|status ...
See README.md for the command line, the config files and the service.
`;
}
