/**
 * A readable table of the benchmark's JSON (printed on stderr when stdout is a terminal, or with --table). It reads
 * the figures by path, so a section that failed (`{ error }`) or was skipped shows as `error: …` or `–`.
 */

type Row = [label: string, path: string, unit?: string];

const SECTIONS: [title: string, rows: Row[]][] = [
  [
    'Library, durable, disk (commits/s)',
    [
      ['W1 one caller', 'workloads.W1.library.oneCaller.commitsPerSecond', '/s'],
      ['W1 50 callers', 'workloads.W1.library.fiftyCallers.commitsPerSecond', '/s'],
      ['W1 50 callers bytes/commit', 'workloads.W1.library.fiftyCallers.bytesPerCommit', 'B'],
      ['W2 one caller', 'workloads.W2.library.oneCaller.commitsPerSecond', '/s'],
      ['W2 50 callers', 'workloads.W2.library.fiftyCallers.commitsPerSecond', '/s'],
      ['W2 50 callers bytes/commit', 'workloads.W2.library.fiftyCallers.bytesPerCommit', 'B'],
    ],
  ],
  [
    'Same workloads elsewhere (commits/s)',
    [
      ['W1 git fast-import', 'workloads.W1.fastImport.commitsPerSecond', '/s'],
      ['W1 naive isomorphic-git', 'workloads.W1.naiveIsomorphicGit.commitsPerSecond', '/s'],
      ['W1 ours (50) / fast-import', 'workloads.W1.ratios.fiftyCallersOverFastImport', '×'],
      ['W1 ours (50) / naive iso-git', 'workloads.W1.ratios.fiftyCallersOverNaiveIsomorphicGit', '×'],
      ['W2 git fast-import', 'workloads.W2.fastImport.commitsPerSecond', '/s'],
      ['W2 naive isomorphic-git', 'workloads.W2.naiveIsomorphicGit.commitsPerSecond', '/s'],
      ['W2 ours (50) / fast-import', 'workloads.W2.ratios.fiftyCallersOverFastImport', '×'],
      ['W2 ours (50) / naive iso-git', 'workloads.W2.ratios.fiftyCallersOverNaiveIsomorphicGit', '×'],
    ],
  ],
  [
    'Disk, W2 50-caller repository (bytes)',
    [
      ['automatic maintenance', 'disk.withMaintenance.bytes', 'B'],
      ['max while writing', 'disk.maxDuringRun.bytes', 'B'],
      ['after store gc', 'disk.afterStoreGc.bytes', 'B'],
      ['git gc --aggressive (reference)', 'disk.gitGcAggressive.bytes', 'B'],
      ['git gc --aggressive time', 'disk.gitGcAggressive.ms', 'ms'],
      ['after gc / reference', 'disk.ratios.afterGcOverGitGcAggressive', '×'],
      ['max while writing / reference', 'disk.ratios.maxDuringRunOverGitGcAggressive', '×'],
    ],
  ],
  [
    'HTTP, 50 connections',
    [
      ['ours writes', 'http.ours.writes.requestsPerSecond', '/s'],
      ['ours writes p50 / p99', 'http.ours.writes.p50ms|http.ours.writes.p99ms', 'ms'],
      ['ours reads', 'http.ours.reads.requestsPerSecond', '/s'],
      ['ours reads p50 / p99', 'http.ours.reads.p50ms|http.ours.reads.p99ms', 'ms'],
      ['etcd put', 'http.etcd.writes.requestsPerSecond', '/s'],
      ['etcd range', 'http.etcd.reads.requestsPerSecond', '/s'],
      ['writes ours / etcd', 'http.ratios.writesOursOverEtcd', '×'],
      ['reads ours / etcd', 'http.ratios.readsOursOverEtcd', '×'],
      ['writes, schemas on / off (medians)', 'schemas.medians.writesOn|schemas.medians.writesOff', '/s'],
      ['writes p99, schemas on / off', 'schemas.medians.p99On|schemas.medians.p99Off', 'ms'],
      ['writes schemas on / off', 'schemas.ratios.writesOnOverOff', '×'],
      ['server CPU/write, schemas on / off', 'schemas.medians.cpuUsPerWriteOn|schemas.medians.cpuUsPerWriteOff', 'µs'],
    ],
  ],
  [
    'History',
    [
      ['open 100k keys: open+get+list', 'history.open.openToFirstAnswersMs', 'ms'],
      ['open 100k keys: peak RSS', 'history.open.rssMB', 'MB'],
      ['merge, 10,000 keys differ', 'history.merge.ms', 'ms'],
      ['log first page', 'history.commits.logFirstPageMs', 'ms'],
      ['diff first → last', 'history.commits.diffFirstToLastMs', 'ms'],
      ['(history length)', 'history.commits.commits', ''],
    ],
  ],
  [
    'CLI, transactions, watch',
    [
      ['store get (median)', 'cli.storeGetMedianMs', 'ms'],
      ['node -e 0 (median)', 'cli.nodeStartMedianMs', 'ms'],
      ['transactions', 'transactions.transactionsPerSecond', '/s'],
      ['watch latency p50 / p99', 'watch.latencyMs.p50|watch.latencyMs.p99', 'ms'],
      ['watch fan-out (10,000 watchers) p50 / p99', 'watchFanOut.latencyMs.p50|watchFanOut.latencyMs.p99', 'ms'],
      ['watch fan-out events missing', 'watchFanOut.eventsMissing', ''],
      ['watch fan-out writes taken', 'watchFanOut.achievedWritesPerSecond', '/s'],
    ],
  ],
];

export function at(root: unknown, path: string): unknown {
  let v: unknown = root;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    if ('error' in v && typeof (v as { error: unknown }).error === 'string') return v;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function show(v: unknown): string {
  if (v === undefined || v === null) return '–';
  if (typeof v === 'number') return v.toLocaleString('en-US', { maximumFractionDigits: 2 });
  if (typeof v === 'object' && 'error' in v) return `error: ${String((v as { error: unknown }).error).slice(0, 60)}`;
  return String(v);
}

export function renderTable(figures: unknown): string {
  const lines: string[] = [];
  const width = 36;
  for (const [title, rows] of SECTIONS) {
    lines.push('', title);
    for (const [label, paths, unit = ''] of rows) {
      const value = paths
        .split('|')
        .map((p) => show(at(figures, p)))
        .join(' / ');
      lines.push(
        `  ${label.padEnd(width)} ${value}${value.startsWith('–') || value.startsWith('error') ? '' : ` ${unit}`}`,
      );
    }
  }
  const targets = at(figures, 'targets');
  if (targets && typeof targets === 'object') {
    lines.push('', 'Targets (issue 6)');
    for (const t of Object.values(targets as Record<string, unknown>)) {
      const { figure, measured, target, met } = t as {
        figure: string;
        measured: unknown;
        target: string;
        met: unknown;
      };
      const mark = met === true ? 'met' : met === false ? 'NOT met' : 'n/a';
      lines.push(
        `  ${String(figure).padEnd(width)} ${show(measured).padStart(10)}  ${String(target).padEnd(28)} ${mark}`,
      );
    }
  }
  return `${lines.join('\n').trimStart()}\n`;
}
