/**
 * Test set-up, run by `deno task test` before the tests: makes sure this
 * machine has what the XMPP tests need (Prosody, ejabberd, openssl) and
 * what the status page's browser test needs (Debian's chromium), installing
 * them with apt-get where it can (as root, or through sudo without a
 * password). Where it cannot, it stops and prints the one command to run.
 * With LVALERT_SKIP_XMPP=1 the XMPP tests are skipped, with
 * LVALERT_SKIP_BROWSER=1 the browser test, and what they need is not
 * installed.
 */

const SKIP_XMPP = Deno.env.get("LVALERT_SKIP_XMPP") === "1";
const SKIP_BROWSER = Deno.env.get("LVALERT_SKIP_BROWSER") === "1";
const PACKAGES = [
  ...(SKIP_XMPP ? [] : ["prosody", "lua-unbound", "openssl", "ejabberd"]),
  ...(SKIP_BROWSER ? [] : ["chromium"]),
];
const PROGRAMS = [
  ...(SKIP_XMPP ? [] : ["prosody", "prosodyctl", "openssl", "ejabberdctl", "setpriv"]),
  ...(SKIP_BROWSER ? [] : ["chromium"]),
];

/** Runs a shell command line (as root through `prefix`); whether it succeeded. */
function sh(prefix: string[], line: string): boolean {
  const argv = [...prefix, "sh", "-c", line];
  return new Deno.Command(argv[0]!, { args: argv.slice(1), stdout: "null", stderr: "null" })
    .outputSync().success;
}

function have(program: string): boolean {
  // ejabberdctl lives in /usr/sbin, not on every user's PATH.
  return sh([], `command -v ${program} || test -x /usr/sbin/${program}`);
}

/**
 * Package scripts start the package's system service unless policy-rc.d
 * says no. The tests only ever run private instances, so services are held
 * for the install (where no policy is in place already).
 */
const POLICY = "/usr/sbin/policy-rc.d";

function installHoldingServices(prefix: string[], install: string[]): boolean {
  const held = !sh(prefix, `test -e ${POLICY}`) &&
    sh(prefix, `printf '#!/bin/sh\\nexit 101\\n' > ${POLICY} && chmod 755 ${POLICY}`);
  try {
    return run([...prefix, "apt-get", "update"]) && run([...prefix, ...install]);
  } finally {
    if (held) sh(prefix, `rm -f ${POLICY}`);
  }
}

function run(argv: string[]): boolean {
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const out = new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    env,
    stdout: "inherit",
    stderr: "inherit",
  })
    .outputSync();
  return out.success;
}

if (SKIP_XMPP) {
  console.error("LVALERT_SKIP_XMPP=1: XMPP tests will be skipped (and counted as ignored)");
}
if (SKIP_BROWSER) {
  console.error("LVALERT_SKIP_BROWSER=1: the browser test will be skipped (counted as ignored)");
}
const missing = PROGRAMS.filter((p) => !have(p));
if (missing.length > 0) {
  const install = [
    "apt-get",
    "install",
    "-y",
    "--no-install-recommends",
    ...PACKAGES,
  ];
  const asRoot = Deno.uid() === 0;
  const sudo = !asRoot && have("sudo") &&
    new Deno.Command("sudo", {
      args: ["-n", "true"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  if (!asRoot && !sudo) {
    console.error(
      `The XMPP and browser tests need ${missing.join(", ")}. Install them with:\n\n` +
        `  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${
          PACKAGES.join(" ")
        }\n\n` +
        "(or run the tests with LVALERT_SKIP_XMPP=1 to skip the XMPP tests, " +
        "LVALERT_SKIP_BROWSER=1 to skip the browser test)",
    );
    Deno.exit(1);
  }
  const prefix = asRoot ? [] : ["sudo", "-n"];
  console.error(`installing ${PACKAGES.join(", ")} with apt-get`);
  if (!installHoldingServices(prefix, install)) {
    console.error("apt-get failed; the XMPP or browser tests cannot run");
    Deno.exit(1);
  }
}
const still = PROGRAMS.filter((p) => !have(p));
if (still.length > 0) {
  console.error(`still missing after install: ${still.join(", ")}`);
  Deno.exit(1);
}
