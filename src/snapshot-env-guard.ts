// Imported first by src/snapshot.ts, while the start-up snapshot is built: records which
// environment variables the modules evaluated into the snapshot read. What they read then is
// frozen into every later run, so src/snapshot.ts fails the build for anything not known to be
// harmless (scripts/snapshot.js then leaves no snapshot, and test/integration/launcher.test.ts
// fails).
const real = process.env;

export const readWhileBuilding = new Set<string>();

process.env = new Proxy(real, {
  get(target, key) {
    if (typeof key === 'string') readWhileBuilding.add(key);
    return Reflect.get(target, key);
  },
  has(target, key) {
    if (typeof key === 'string') readWhileBuilding.add(key);
    return Reflect.has(target, key);
  },
});

/** The real environment back, before the snapshot is taken. */
export function restoreEnvironment(): void {
  process.env = real;
}
