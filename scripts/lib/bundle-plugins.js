// esbuild plugins shared by scripts/bundle.js (the ESM bundle) and scripts/snapshot.js (the
// start-up snapshot's CommonJS bundle).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

/** How many times each dependency patch applied: 0 means the dependency changed under it. */
export const patched = { pgProbe: 0, iconv: 0 };

/** `import.meta.url` → the URL of this file's tsc output under dist/, as seen from the chunk. */
export const importMetaUrlAsTsc = {
  name: 'import-meta-url-as-tsc',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (/import\.meta\.(dirname|filename)\b/.test(text)) {
        // They would name the chunk's directory, not this file's: derive paths from the URL.
        return { errors: [{ text: 'use import.meta.url, not import.meta.dirname/filename' }] };
      }
      if (!args.path.startsWith(src + path.sep) || !text.includes('import.meta.url')) {
        return { contents: text, loader: 'ts' };
      }
      const emitted = path.relative(src, args.path).replace(/\.ts$/, '.js').split(path.sep);
      const url = `new URL(${JSON.stringify(`./${emitted.join('/')}`)}, import.meta.url).href`;
      return { contents: text.replaceAll('import.meta.url', url), loader: 'ts' };
    });
  },
};

/**
 * pg 8 asks at import whether it runs in a Cloudflare Worker: `navigator.userAgent` where there
 * is a `navigator` (Node 21+), else by constructing a `Response`, which on Node 20 loads Node's
 * fetch implementation (undici): ~13 ms here, a tenth of a diagnose. Give that one module the
 * `navigator` Node 21+ has, in its own scope; the global object is not touched. Counted, so a pg
 * that moved the check shows up as a warning instead of a silent slowdown.
 */
export const pgRuntimeProbe = {
  name: 'pg-runtime-probe',
  setup(build) {
    build.onLoad({ filter: /[\\/]node_modules[\\/]pg[\\/]lib[\\/]stream\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('function isCloudflareRuntime')) return undefined;
      patched.pgProbe++;
      const shim =
        "var navigator = globalThis.navigator ?? { userAgent: 'Node.js/' + process.versions.node };";
      return { contents: `${shim}\n${text}`, loader: 'js' };
    });
  },
};

/**
 * mysql2 requires iconv-lite (540 kB: every character set's tables) at import, for the rare text
 * that is neither UTF-8 nor Latin-1; compiling it cost ~5 ms of every MySQL run. Bundled, it would
 * be parsed with mysql2; left in node_modules (external) and required on first use, it costs
 * nothing until a column in such a character set arrives. Counted like the pg patch above.
 */
export const deferIconv = {
  name: 'defer-iconv-lite',
  setup(build) {
    build.onLoad(
      { filter: /[\\/]node_modules[\\/]mysql2[\\/]lib[\\/]parsers[\\/]string\.js$/ },
      async (args) => {
        const text = await readFile(args.path, 'utf8');
        const eager = "const Iconv = require('iconv-lite');";
        if (!text.includes(eager)) return undefined;
        patched.iconv++;
        const lazy =
          "let iconvLite; const Iconv = { getDecoder: (...a) => (iconvLite ??= require('iconv-lite')).getDecoder(...a), getEncoder: (...a) => (iconvLite ??= require('iconv-lite')).getEncoder(...a) };";
        return { contents: text.replace(eager, lazy), loader: 'js' };
      },
    );
  },
};
