/** Plain-text tables for benchmark results. */

export type Cell = string | number;

export function printTable(title: string, header: readonly string[], rows: readonly (readonly Cell[])[]): void {
  const text = [header, ...rows].map((row) => row.map(String));
  const widths = header.map((_, column) => Math.max(...text.map((row) => (row[column] ?? '').length)));
  const line = (row: readonly string[]) =>
    row.map((cell, column) => (column === 0 ? cell.padEnd(widths[0]!) : cell.padStart(widths[column]!))).join('  ');
  console.log(`\n${title}\n`);
  console.log(line(text[0]!));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  for (const row of text.slice(1)) console.log(line(row));
}

/** 1234567 → "1,234,567"; fractional values keep `digits` decimals. */
export function formatNumber(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A ratio such as "×1.23"; n/a when either side is missing. */
export function formatRatio(value: number): string {
  return Number.isFinite(value) && value > 0 ? `×${value.toFixed(2)}` : 'n/a';
}

export function formatMs(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)} ms` : 'n/a';
}

export function formatBytes(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value >= 1024 ? `${(value / 1024).toFixed(1)} KiB` : `${Math.round(value)} B`;
}
