// The hooks half of module-recorder.mjs: runs on Node's loader thread and appends the URL of every
// module it loads to the log file given at registration.
import fs from 'node:fs';

let file;

export function initialize(data) {
  file = data.file;
}

export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  fs.appendFileSync(file, `${url}\n`);
  return result;
}
