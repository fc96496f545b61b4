// esbuild plugins of scripts/bundle.js.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

/** How many times each dependency patch applied: 0 means the dependency changed under it. */
export const patched = { pgProbe: 0 };

/** `import.meta.url` → the URL this source file would have under dist/, as seen from the chunk. */
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
