/**
 * A plain-text table of one or more reports, for `difftx conformance --backend all`: one row per
 * case, one status column per backend (with the NMSE), then a summary line per backend.
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
  const header = ['case', 'kernel', ...reports.map((r) => r.backend)];
  const rows = names.map((name) => [name, kernels.get(name)!, ...byName.map((m) => cell(m.get(name)))]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (row: string[]) =>
    row
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  const lines = [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), ''];
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
  return lines.join('\n');
}
