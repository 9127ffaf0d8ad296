/** The dashboard's tables: one header row and one "nothing here" row for every view. */
import { html } from "htm/preact";
import type { ComponentChildren } from "preact";

/**
 * A table of `rows`, each drawn by `row`. `actions`: a last column of
 * buttons, its header for screen readers only; `empty`: the row shown when
 * there are no rows.
 */
export function Table<T>(props: {
  columns: readonly string[];
  rows: readonly T[];
  row: (r: T) => ComponentChildren;
  actions?: boolean;
  empty?: string;
  class?: string;
}) {
  const { columns, rows, actions = false, empty } = props;
  return html`<table class=${props.class}>
    <thead>
      <tr>
        ${columns.map((c) => html`<th>${c}</th>`)}
        ${actions && html`<th><span class="sr">Actions</span></th>`}
      </tr>
    </thead>
    <tbody>
      ${
        rows.length === 0 &&
        empty !== undefined &&
        html`<tr>
          <td colspan=${columns.length + (actions ? 1 : 0)} class="muted">${empty}</td>
        </tr>`
      }
      ${rows.map(props.row)}
    </tbody>
  </table>`;
}
