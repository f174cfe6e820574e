/**
 * Plain-text tables of one or more reports, for `difftx conformance --backend all`:
 *   - formatSummaryTable: one row per kernel family, one column per backend (passed of run, failures
 *     and unsupported counted, the worst element error), then every failure in full: what a reader of
 *     a CI log needs, in a screenful;
 *   - formatReportTable: one row per case, one status column per backend (with the NMSE) (--verbose).
 * Both end with a summary line per backend.
 */
import type { CaseResult, ConformanceReport } from './types.js';

function cell(result: CaseResult | undefined): string {
  if (!result) return '-';
  if (result.status === 'unsupported') return 'unsupported';
  const nmse = result.nmse === null ? '' : ` ${formatNumber(result.nmse)}`;
  return `${result.status === 'pass' ? 'pass' : 'FAIL'}${nmse}`;
}

function formatNumber(x: number): string {
  return x === 0 ? '0' : Number.isFinite(x) ? x.toExponential(1) : String(x);
}

/** A left-aligned table with a rule under the header. */
function layout(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (row: string[]) =>
    row
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

/** The summary line of each report, then every failure with its measurements. */
function summaryAndFailures(reports: readonly ConformanceReport[]): string[] {
  const lines = [''];
  for (const report of reports) {
    const { pass, fail, unsupported } = report.summary;
    lines.push(
      `${report.backend} (${report.device}, ${report.dtype}): ${pass} pass, ${fail} fail, ${unsupported} unsupported`,
    );
  }
  const failures = reports.flatMap((report) =>
    report.cases.filter((r) => r.status === 'fail').map((r) => `  ${report.backend}  ${r.name}: ${r.message ?? ''}`),
  );
  if (failures.length) lines.push('', 'failures:', ...failures);
  return lines;
}

/** One family's counts: "12/12", "11/12 (1 FAIL)", "10/12 (2 unsupported)"; and its worst element error. */
function familyCell(results: readonly CaseResult[]): [string, string] {
  if (results.length === 0) return ['-', ''];
  const pass = results.filter((r) => r.status === 'pass').length;
  const fail = results.filter((r) => r.status === 'fail').length;
  const unsupported = results.length - pass - fail;
  const notes = [fail ? `${fail} FAIL` : '', unsupported ? `${unsupported} unsupported` : ''].filter(Boolean);
  const measured = results.filter((r) => r.elementError !== null).map((r) => r.elementError as number);
  const worst = measured.length ? formatNumber(Math.max(...measured)) : '';
  return [`${pass}/${results.length}${notes.length ? ` (${notes.join(', ')})` : ''}`, worst];
}

export function formatSummaryTable(reports: readonly ConformanceReport[]): string {
  const families: string[] = [];
  for (const report of reports) for (const r of report.cases) if (!families.includes(r.kernel)) families.push(r.kernel);
  const cells = families.map((family) =>
    reports.map((report) => familyCell(report.cases.filter((r) => r.kernel === family))),
  );
  // Counts padded per backend, so each backend's worst errors line up in a column of their own.
  const countWidths = reports.map((_, b) => Math.max(...cells.map((row) => row[b][0].length)));
  const rows = families.map((family, f) => [
    family,
    ...cells[f].map(([counts, worst], b) => `${counts.padEnd(countWidths[b])}  ${worst}`.trimEnd()),
  ]);
  return [
    ...layout(['kernel', ...reports.map((r) => r.backend)], rows),
    '',
    'each cell: cases passed of those run, then the worst element error as a fraction of its bound (≤ 1 passes)',
    ...summaryAndFailures(reports),
  ].join('\n');
}

export function formatReportTable(reports: readonly ConformanceReport[]): string {
  const names: string[] = [];
  const kernels = new Map<string, string>();
  for (const report of reports) {
    for (const r of report.cases) {
      if (!kernels.has(r.name)) {
        names.push(r.name);
        kernels.set(r.name, r.kernel);
      }
    }
  }
  const byName = reports.map((report) => new Map(report.cases.map((r) => [r.name, r])));
  const rows = names.map((name) => [name, kernels.get(name)!, ...byName.map((m) => cell(m.get(name)))]);
  return [...layout(['case', 'kernel', ...reports.map((r) => r.backend)], rows), ...summaryAndFailures(reports)].join(
    '\n',
  );
}
