import { describe, expect, it } from 'vitest';
import { parseDiagnoseOptions } from '../../src/commands/diagnose.js';
import { parseMitigateOptions } from '../../src/commands/mitigate.js';

describe('parseDiagnoseOptions', () => {
  it.each([
    [{}, { output: 'human', nonInteractive: false, step: false, sets: [] }],
    [{ output: 'json' }, { output: 'json', nonInteractive: true }],
    [{ nonInteractive: true }, { nonInteractive: true }],
    [{ set: ['a=1', 'b=2'] }, { sets: ['a=1', 'b=2'] }],
    [{ step: true }, { step: true }],
    [{ color: false }, { noColor: true }],
    [{ connectTimeout: '2s' }, { target: expect.objectContaining({ connectTimeoutMs: 2000 }) }],
    [{ connectTimeout: '250ms' }, { target: expect.objectContaining({ connectTimeoutMs: 250 }) }],
  ])('%j → %j', (flags, expected) => {
    expect(parseDiagnoseOptions(flags)).toMatchObject(expected);
  });

  it.each([
    [{ output: 'yaml' }, '--output yaml: expected human or json'],
    [{ connectTimeout: 'soon' }, '--connect-timeout soon'],
    [{ connectTimeout: '0s' }, '--connect-timeout: must be more than 0s'],
  ])('%j is a usage error', (flags, message) => {
    expect(() => parseDiagnoseOptions(flags)).toThrow(message);
    try {
      parseDiagnoseOptions(flags);
    } catch (err) {
      expect((err as { exitCode: number }).exitCode).toBe(2);
    }
  });
});

describe('parseMitigateOptions', () => {
  it.each([
    [
      { action: ['kill-idle'] },
      { actions: ['kill-idle'], safety: expect.objectContaining({ yes: false, dryRun: false }) },
    ],
    [{ pid: '42' }, { actions: ['terminate-pid'], pid: 42 }],
    [
      { pid: '42', cancel: true },
      { actions: ['cancel-pid'], pid: 42 },
    ],
    [
      { action: ['kill-long'], pid: '42' },
      { actions: ['kill-long'], pid: 42 },
    ],
    [{ yes: true, dryRun: true }, { safety: expect.objectContaining({ yes: true, dryRun: true }) }],
    [{ maxVictims: '5' }, { safety: expect.objectContaining({ maxVictims: 5 }) }],
    [{ escalate: true }, { safety: expect.objectContaining({ escalateAfterS: 10 }) }],
    [{ escalate: '30s' }, { safety: expect.objectContaining({ escalateAfterS: 30 }) }],
    [{ killTimeout: '2s' }, { safety: expect.objectContaining({ killTimeoutMs: 2000 }) }],
    [
      { protectUser: ['postgres'], protectApp: ['migrations', 'cron'] },
      {
        safety: expect.objectContaining({
          protectUsers: ['postgres'],
          protectApps: ['migrations', 'cron'],
        }),
      },
    ],
  ])('%j → %j', (flags, expected) => {
    expect(parseMitigateOptions(flags)).toMatchObject(expected);
  });

  it.each([
    [{ pid: 'abc' }, '--pid abc'],
    [{ pid: '0' }, '--pid 0: expected a process id'],
    [{ cancel: true }, '--cancel goes with --pid'],
    [{ maxVictims: '0' }, '--max-victims 0: expected 1 or more'],
    [{ maxVictims: 'many' }, '--max-victims many'],
    [{ escalate: 'later' }, '--escalate later'],
    [{ killTimeout: '0s' }, '--kill-timeout: must be more than 0s'],
  ])('%j is a usage error', (flags, message) => {
    expect(() => parseMitigateOptions(flags)).toThrow(message);
  });
});
