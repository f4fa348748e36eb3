// Reading a test server's SQLite database with the sqlite3 shell, for the tests that check
// what was stored (they skip those checks where the shell is not installed).
import { execFileSync } from 'node:child_process';

// The rows that sql gives on the database file db, as objects (sqlite3 -json).
export function sqlite(db, sql) {
  const out = execFileSync('sqlite3', ['-json', db, sql], { encoding: 'utf8' });
  return out.trim() ? JSON.parse(out) : [];
}

// Whether the sqlite3 shell is installed.
export function hasSqliteCli() {
  try { execFileSync('sqlite3', ['-version']); return true; } catch { return false; }
}
