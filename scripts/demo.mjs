// `npm start`: backs up a demo database it creates (demo/app.db), then lists and verifies
// the backups, all through the real CLI. `npm start -- path/to/app.db` backs up yours.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const cli = path.resolve('dist/cli.js');
const run = (...args) => {
  console.log(`\n$ lifeboat ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
  return r.status ?? 1;
};

let db = process.argv[2];
if (!db) {
  db = path.resolve('demo/app.db');
  if (!existsSync(db)) {
    mkdirSync(path.dirname(db), { recursive: true });
    // sql.js (already a dependency) makes the demo database, so no sqlite3 binary is needed.
    const initSqlJs = require('sql.js');
    const SQL = await initSqlJs({ locateFile: (f) => path.resolve('dist', f) });
    const d = new SQL.Database();
    d.run(`CREATE TABLE employees(id INTEGER PRIMARY KEY, name TEXT NOT NULL, role TEXT, hired TEXT);
           CREATE TABLE departments(id INTEGER PRIMARY KEY, name TEXT UNIQUE);
           CREATE INDEX employees_role ON employees(role);`);
    const roles = ['engineer', 'designer', 'manager', 'analyst'];
    for (let i = 1; i <= 500; i++) {
      d.run('INSERT INTO employees(name, role, hired) VALUES (?, ?, ?)', [`Employee ${i}`, roles[i % roles.length], `2020-01-${String((i % 28) + 1).padStart(2, '0')}`]);
    }
    for (const n of ['Platform', 'Product', 'Data']) d.run('INSERT INTO departments(name) VALUES (?)', [n]);
    writeFileSync(db, Buffer.from(d.export()));
    d.close();
    console.log(`created the demo database ${path.relative(process.cwd(), db)} (500 employees)`);
  }
}

console.log(`\n$ lifeboat backup ${db}`);
const backup = spawnSync(process.execPath, [cli, 'backup', db], { stdio: ['inherit', 'pipe', 'inherit'], encoding: 'utf8' });
process.stdout.write(backup.stdout);
let status = backup.status ?? 1;
// The directory the settings chose (backups/ beside the database unless configured): the
// folder of a zip, or the folder holding snapshots/ for a repository backup.
const printed = backup.stdout.trim().split('\n').at(-1) || path.join(path.dirname(path.resolve(db)), 'backups', 'x');
const parent = path.dirname(printed);
const dir = path.basename(parent) === 'snapshots' && printed.endsWith('.json') ? path.dirname(parent) : parent;
if (status === 0) status = run('list', db, '--dir', dir) || status;
if (status === 0) {
  // The backup just made must be listed: a demo that shows an empty folder fails.
  const listed = spawnSync(process.execPath, [cli, 'list', db, '--dir', dir, '--json'], { encoding: 'utf8' });
  const count = listed.status === 0 ? JSON.parse(listed.stdout).backups.length : 0;
  if (count < 1) {
    console.error(`demo: the backup just made is not listed in ${dir}`);
    status = 1;
  }
}
if (status === 0) status = run('verify', '--all', '--dir', dir);
if (status === 0) run('log', '--dir', dir, '--limit', '5');
process.exit(status);
