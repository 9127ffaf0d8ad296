/** The `warden` command line. Every command returns its exit code; errors become one clear line. */
import { Command, CommanderError } from "commander";
import { WardenError } from "../errors.js";
import { packageVersion } from "../util/version.js";
import { benchCommand, type BenchOptions } from "./bench.js";
import { doctorCommand } from "./doctor.js";
import { envCreate, envList, envRemove, type EnvCreateOptions } from "./env.js";
import type { GlobalOptions } from "./context.js";
import { parseIsolationFlag } from "./isolation-flags.js";
import { keysCreate, keysList, keysRevoke, type KeysCreateOptions } from "./keys.js";
import { DEFAULT_MCP_USER, mcpCommand, type McpOptions } from "./mcp.js";
import { migrateCommand, type MigrateOptions } from "./migrate.js";
import { analyzeCommand, notebookRunCommand } from "./notebook.js";
import { EXIT, runCommand, type RunOptions } from "./run.js";
import { serveCommand, type ServeOptions } from "./serve.js";
import { usageCommands } from "./usage.js";

function program(setExit: (code: number) => void): Command {
  const cli = new Command("warden")
    .description("Run untrusted code behind real kernel isolation.")
    .option("--config <file>", "JSON config file (or $WARDEN_CONFIG)")
    .option("--data-dir <dir>", "state directory (or $WARDEN_DATA_DIR)")
    .option("--log-level <level>", "fatal|error|warn|info|debug|trace|silent")
    .version(packageVersion(), "-V, --version", "print the version")
    .exitOverride()
    .showHelpAfterError();

  cli
    .command("run")
    .description(
      "run FILE (or - for standard input) once in a sandbox; exits with the program's code",
    )
    .argument("<file>", "source file, or - to read the code from standard input")
    .argument("[args...]", "arguments for the program (after --)")
    .option("-l, --language <language>", "language (default: from the file extension)")
    .option("--stdin <file>", "file to feed as standard input (- for this process's stdin)")
    .option("--timeout <seconds>", "wall-clock limit")
    .option("--memory <mb>", "memory limit in MiB")
    .option("--cpu <percent>", "share of the host's CPU capacity")
    .option("--disk <mb>", "size of /workspace + /tmp in MiB")
    .option("--allow-net <hosts>", "domains the program may reach (network policy)")
    .option(
      "--environment <name>",
      "a prebuilt environment to import packages from (warden env list)",
    )
    .option("--json", "print the result as JSON instead of streaming the output")
    .option("--tests <dir>", "judge on every NAME.in of DIR (NAME.out: expected output)")
    .option("--compare <mode>", "with --tests: exact, trailing_whitespace, tokens, float, checker")
    .option("--tolerance <x>", "with --compare float: absolute and relative tolerance")
    .option("--checker <file>", "with --tests: a checker program (input/expected/actual.txt)")
    .option("--stop-on-first-failure", "with --tests: skip the cases after the first failure")
    .option("--isolation <tier>", "namespaces or gvisor (default sandbox.isolation)")
    .action(async (file: string, args: string[], opts: RunOptions, cmd: Command) => {
      setExit(await runCommand(file, args, { ...cmd.optsWithGlobals<RunOptions>(), ...opts }));
    });

  cli
    .command("analyze")
    .description(
      "static analysis of a .py, .js or .ipynb file (Python in a sandbox); exits 1 on a high-severity finding",
    )
    .argument("<file>", "source file or notebook")
    .option("-l, --language <language>", "python or javascript (default: from the extension)")
    .option("--json", "print the report as JSON")
    .action(async (file: string, opts: { language?: string; json?: boolean }, cmd: Command) => {
      setExit(await analyzeCommand(file, { ...cmd.optsWithGlobals<GlobalOptions>(), ...opts }));
    });

  cli
    .command("notebook")
    .description("notebooks")
    .command("run")
    .description(
      "run a notebook (.ipynb or .py) in a fresh session; exits 0 clean, 1 a cell failed, 4 refused by policy",
    )
    .argument("<file>", "the notebook")
    .option("-o, --output <file>", "write the executed notebook here (default: standard output)")
    .option("--cell-timeout <seconds>", "per-cell timeout (default notebooks.cellTimeout)")
    .option("--continue", "keep going after a failing cell (default: stop)")
    .option("--policy <mode>", "static-analysis policy: off, audit or block (default policy.mode)")
    .option("--environment <name>", "a prebuilt environment for the notebook (warden env list)")
    .option("--json", "print the run (notebook and summary) as JSON")
    .action(
      async (
        file: string,
        opts: {
          output?: string;
          cellTimeout?: string;
          continue?: boolean;
          policy?: string;
          environment?: string;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        setExit(
          await notebookRunCommand(file, { ...cmd.optsWithGlobals<GlobalOptions>(), ...opts }),
        );
      },
    );

  cli
    .command("serve")
    .description(
      "run the multi-tenant service (REST, Piston-compatible API, admin API) on the embedded defaults",
    )
    .option("--port <port>", "listen port (default 8080, or $WARDEN_PORT)")
    .option("--host <address>", "listen address (default 127.0.0.1, or $WARDEN_HOST)")
    .option(
      "--role <role>",
      "all (default), api or worker; api and worker need $WARDEN_DATABASE_URL and $WARDEN_REDIS_URL",
    )
    .action(async (opts: ServeOptions, cmd: Command) => {
      setExit(await serveCommand({ ...cmd.optsWithGlobals<ServeOptions>(), ...opts }));
    });

  cli
    .command("mcp")
    .description(
      "serve MCP on stdio for one local client; its sandboxes are destroyed when it disconnects",
    )
    .option("--user <userId>", "the user every call acts as", DEFAULT_MCP_USER)
    .action(async (opts: McpOptions, cmd: Command) => {
      setExit(await mcpCommand({ ...cmd.optsWithGlobals<McpOptions>(), ...opts }));
    });

  const keys = cli.command("keys").description("manage API keys");
  keys
    .command("create")
    .description("make a key and print it (once)")
    .requiredOption("--name <name>", "what the key is for")
    .option("--scopes <list>", "comma-separated: execute, sessions, admin, delegate", "execute")
    .option("--user <userId>", "the user it acts as (default: the name)")
    .option("--allow-net <hosts>", "egress this key's executions may ask for, within network.allow")
    .option("--policy <mode>", "static-analysis policy for this key: off, audit or block")
    .option("--isolation <tier>", "the tier of this key's runs: namespaces or gvisor")
    .option("--force-isolation", "the key can never run outside its tier (gvisor only)")
    .option("--json", "print the key record with its token as JSON")
    .action(async (opts: KeysCreateOptions, cmd: Command) => {
      setExit(await keysCreate({ ...cmd.optsWithGlobals<GlobalOptions>(), ...opts }));
    });
  keys
    .command("list")
    .description("list keys (never their tokens)")
    .option("--json", "as JSON")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      setExit(await keysList({ ...cmd.optsWithGlobals<GlobalOptions>(), ...opts }));
    });
  keys
    .command("revoke")
    .description("revoke a key by id")
    .argument("<id>", "key id (see keys list)")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      setExit(await keysRevoke({ ...cmd.optsWithGlobals<GlobalOptions>(), id }));
    });
  usageCommands(cli, keys, setExit);

  cli
    .command("migrate")
    .description("apply pending schema migrations to the store (SQLite data dir or PostgreSQL)")
    .option("--database-url <url>", "PostgreSQL to migrate (or $WARDEN_DATABASE_URL)")
    .action(async (opts: MigrateOptions, cmd: Command) => {
      setExit(await migrateCommand({ ...cmd.optsWithGlobals<MigrateOptions>(), ...opts }));
    });

  const env = cli.command("env").description("prebuilt package environments");
  env
    .command("create")
    .description(
      "build an environment in a sandbox (pip/npm reach only the configured index) and store it in the data dir",
    )
    .argument("<name>", "lower case letters, digits, . _ - (at most 63)")
    .option("--python", "a Python environment (pip install --target)")
    .option("--pip <packages...>", "Python packages, e.g. numpy==2.1.0")
    .option("--requirements <file>", "a requirements file for pip")
    .option("--from-dir <dir>", "install from wheels/sdists in DIR only (no index, no network)")
    .option("--node", "a Node.js environment (npm install)")
    .option("--npm <packages...>", "npm packages, e.g. lodash@4")
    .option("--quiet", "do not show the installers' output")
    .option("--json", "print the environment as JSON")
    .action(async (name: string, opts: EnvCreateOptions, cmd: Command) => {
      setExit(await envCreate(name, { ...cmd.optsWithGlobals<EnvCreateOptions>(), ...opts }));
    });
  env
    .command("list")
    .description("list environments (the built-in default first)")
    .option("--json", "as JSON")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      setExit(await envList({ ...cmd.optsWithGlobals<GlobalOptions>(), ...opts }));
    });
  env
    .command("rm")
    .description("remove an environment no running execution or live session uses")
    .argument("<name>", "the environment")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      setExit(await envRemove(name, cmd.optsWithGlobals<GlobalOptions>()));
    });

  cli
    .command("doctor")
    .description("check every prerequisite of isolation and every runtime")
    .option("--json", "print the checks as JSON")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      setExit(await doctorCommand({ ...cmd.optsWithGlobals(), ...opts }));
    });

  cli
    .command("bench")
    .description("measure isolation overhead and timeout accuracy against a same-run baseline")
    .option("--runs <n>", "runs per command (at least 5)", "50")
    .option("--http", "measure executions/s through the REST API (the default)")
    .option("--no-http", "skip the REST throughput measurement")
    .option("--requests <n>", "executions per throughput measurement", "500")
    .option("--concurrency <n>", "concurrent clients in the throughput measurement", "20")
    .option("--scale", "also measure 1,000 concurrent sleeping sandboxes (takes minutes)")
    .option("--sleepers <n>", "measure this many concurrent sleeping sandboxes (implies --scale)")
    .option(
      "--cluster",
      "only cluster throughput: an API node with 1 and 2 workers vs a single node",
    )
    .option("--database-url <url>", "PostgreSQL where --cluster makes its scratch database")
    .option("--judge", "only test cases/s: one judge run vs the same cases as executions")
    .option("--cases <n>", "cases of --judge", "100")
    .option(
      "--tiers <list>",
      "only cold and warm starts per isolation tier (namespaces,gvisor) against a bare spawn",
    )
    .option("--isolation <tier>", "only cold and warm starts in this tier (namespaces or gvisor)")
    .option("--json", "print the figures as JSON")
    .action(async (opts: BenchOptions & { isolation?: string }, cmd: Command) => {
      // Parsed here so a typo fails before minutes of measuring; the bench reads `isolation`.
      const isolation = parseIsolationFlag(opts.isolation);
      setExit(
        await benchCommand({
          ...cmd.optsWithGlobals<BenchOptions>(),
          ...opts,
          ...(isolation ? { isolation } : {}),
        }),
      );
    });
  return cli;
}

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  try {
    await program((code) => (exitCode = code)).parseAsync(argv);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT.usage;
    if (error instanceof WardenError) {
      console.error(`warden: ${error.code}: ${error.message}`);
      return error.code === "INVALID_REQUEST" || error.code === "UNSUPPORTED_LANGUAGE"
        ? EXIT.usage
        : EXIT.wardenError;
    }
    console.error(`warden: internal error: ${(error as Error).message}`);
    return EXIT.wardenError;
  }
}
