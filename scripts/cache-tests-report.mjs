// Summarises a run of the HTTP caching test suite (http-cache-tests) beside
// the results published with the package: raw passes per kind (required,
// optimal, check) and the suite's own dependency-aware verdicts, as
// cache-tests.fyi shows them.
//
//   node cache-tests-report.mjs PACKAGE_DIR RESULTS_JSON NAME [RESULTS_JSON NAME]...
//
// The last line is `cache-tests: required N/T, optimal M/U` (raw passes of
// the last NAME), for tools to read.
import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const [packageDir, ...runs] = process.argv.slice(2)
const ours = []
for (let i = 0; i + 1 < runs.length; i += 2) ours.push([runs[i + 1], runs[i]])
if (ours.length === 0) throw new Error('usage: cache-tests-report.mjs PACKAGE_DIR RESULTS_JSON NAME...')
const load = file => import(pathToFileURL(path.join(packageDir, file)).href)
const tests = (await load('tests/index.mjs')).default
tests.push((await load('tests/surrogate-control.mjs')).default)
const { determineTestResult } = await load('lib/display.mjs')
const published = (await load('results/index.mjs')).default

const kinds = ['required', 'optimal', 'check']
const all = tests.flatMap(suite => suite.tests)
const totals = Object.fromEntries(kinds.map(k => [k, all.filter(t => (t.kind || 'required') === k).length]))

// The suite's verdict symbols (lib/display.mjs), by name.
const VERDICTS = {
  '-': 'untested',
  '✅': 'pass',
  '⛔️': 'fail',
  '⚠️': 'optional fail',
  Y: 'yes',
  N: 'no',
  '🔹': 'setup fail',
  '⁉️': 'harness fail',
  '⚪️': 'dependency fail',
  '↻': 'retry'
}

// Raw passes per kind; passes per kind with the suite's dependencies
// honoured (a pass whose prerequisite fails does not count, as
// cache-tests.fyi shows it); and every verdict counted by name.
function score (results) {
  const raw = Object.fromEntries(kinds.map(k => [k, 0]))
  const honoured = Object.fromEntries(kinds.map(k => [k, 0]))
  const verdicts = {}
  for (const test of all) {
    const kind = test.kind || 'required'
    if (results[test.id] === true) raw[kind]++
    const verdict = VERDICTS[determineTestResult(tests, test.id, results)[2]] || 'unknown'
    if (verdict === 'pass' || verdict === 'yes') honoured[kind]++
    verdicts[verdict] = (verdicts[verdict] || 0) + 1
  }
  return { raw, honoured, verdicts }
}

const rows = ours.map(([name, file]) => [name, score(JSON.parse(fs.readFileSync(file, 'utf8')))])
for (const cache of published.filter(c => c.type === 'rev-proxy' || c.type === 'cdn')) {
  const results = JSON.parse(fs.readFileSync(path.join(packageDir, 'results', cache.file), 'utf8'))
  rows.push([`${cache.name} ${cache.version || ''}`.trim(), score(results)])
}
rows.sort((a, b) => b[1].raw.required - a[1].raw.required || b[1].raw.optimal - a[1].raw.optimal)

const pad = (s, n) => String(s).padEnd(n)
const both = (x, k) => `${x.raw[k]} (${x.honoured[k]})`
console.log('Raw passes, and in brackets passes whose prerequisites pass too (the suite\'s verdicts):')
console.log()
console.log(`| ${pad('cache', 40)} | required /${totals.required} | optimal /${totals.optimal} | check /${totals.check} |`)
console.log(`|${'-'.repeat(42)}|---------------|-------------|------------|`)
for (const [who, x] of rows) {
  console.log(`| ${pad(who, 40)} | ${pad(both(x, 'required'), 13)} | ${pad(both(x, 'optimal'), 11)} | ${pad(both(x, 'check'), 10)} |`)
}
console.log()
for (const [name, file] of ours) {
  const run = score(JSON.parse(fs.readFileSync(file, 'utf8')))
  console.log(`${name}, every verdict: ` +
    Object.entries(run.verdicts).sort((a, b) => b[1] - a[1]).map(([v, n]) => `${v} ${n}`).join(', '))
}
const mine = score(JSON.parse(fs.readFileSync(ours[ours.length - 1][1], 'utf8')))
console.log(`cache-tests: required ${mine.raw.required}/${totals.required}, optimal ${mine.raw.optimal}/${totals.optimal}`)
