// contrib/caredesk.service: `systemd-analyze verify` accepts it (with ExecStart pointed at
// the binary under test, since /usr/local/bin/caredesk is not installed here), and it keeps
// the sandboxing docs/operations.md promises.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot, caredeskBin } from './lib/server.mjs';

const unit = readFileSync(path.join(repoRoot, 'contrib/caredesk.service'), 'utf8');
const hasAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

test('the unit is sandboxed and keeps its database in a state directory', () => {
  for (const line of ['ProtectSystem=strict', 'NoNewPrivileges=yes', 'StateDirectory=caredesk',
    'ProtectHome=yes', 'PrivateTmp=yes', 'CapabilityBoundingSet=',
    'Environment=CAREDESK_DB=/var/lib/caredesk/caredesk.db', 'KillSignal=SIGTERM']) {
    assert.ok(unit.split('\n').includes(line), `${line} in contrib/caredesk.service`);
  }
});

test('systemd-analyze verify accepts the unit', { skip: !hasAnalyze && 'systemd-analyze is not installed' }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'caredesk-unit-'));
  try {
    const file = path.join(dir, 'caredesk.service');
    writeFileSync(file, unit.replaceAll('/usr/local/bin/caredesk', caredeskBin));
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    const own = (r.stderr || '').split('\n').filter((l) => l.includes('caredesk.service'));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(own, [], r.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
