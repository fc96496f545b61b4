// The entry of poolctl's V8 start-up snapshot (dist/poolctl.blob, built by scripts/snapshot.js with
// `node --build-snapshot`). The launcher (bin/poolctl) starts Node from it when it was built by
// the same Node for this dist/ directory; otherwise it runs bin/poolctl.js.
//
// Why: on the night it is needed, poolctl's own start-up is part of the time to relief. Loaded the
// usual way, commander and the database drivers cost ≈ 35 ms of compiling and evaluating modules
// before the first byte reaches the server (bench/README.md). In the snapshot they are evaluated
// already: Node deserializes the heap and calls main().
//
// What runs here is evaluated at build time and frozen: only modules whose top-level code reads
// nothing of the machine, the environment or the terminal. Everything poolctl itself does, and
// every module imported lazily (views, colours, prompts, YAML), is evaluated when a run needs it.
// src/snapshot-env-guard.ts fails the build when they read what they should not of the environment.
import { readWhileBuilding, restoreEnvironment } from './snapshot-env-guard.js';
import { startupSnapshot } from 'node:v8';
import iconv from 'iconv-lite';
import 'mysql2/promise';
import 'pg';
import { main } from './cli.js';
// The modules a diagnose, mitigate or verify loads before its first query (cli.ts imports them
// lazily). Their static imports are poolctl's own and Node's; the views, with their colour
// detection, stay lazy.
import './commands/diagnose.js';
import './commands/mitigate.js';
import './commands/verify.js';
import './io/io.js';
import './io/prompter.js';
import './targets/connect.js';
import './targets/mysql.js';
import './targets/postgres.js';
import './transcript/writer.js';

// mysql2 decodes the server's greeting as CESU-8 (MySQL's utf8mb3) through iconv-lite, whose first
// decoder loads every character set it knows: ≈ 9 ms of each MySQL connect, done here instead.
iconv.getDecoder('cesu8');

restoreEnvironment();
/**
 * Read at import and harmless frozen: pg's default user (poolctl always passes the user it
 * resolved) and whether it prefers pg-native (never installed with poolctl); mysql2's packet names
 * for NODE_DEBUG output, and the TZ it checks again before every result set.
 */
const HARMLESS = new Set(['USER', 'USERNAME', 'NODE_PG_FORCE_NATIVE', 'NODE_DEBUG', 'TZ']);
const frozen = [...readWhileBuilding].filter((name) => !HARMLESS.has(name));
if (frozen.length > 0) {
  throw new Error(
    `modules evaluated into the snapshot read ${frozen.join(', ')} from the environment: ` +
      "their values would be the build's in every run; import them lazily (src/snapshot.ts)",
  );
}

startupSnapshot.setDeserializeMainFunction(() => {
  // Started as `node --snapshot-blob poolctl.blob -- ARGS…`: argv is [node, ...ARGS].
  void main(process.argv.slice(1));
});
