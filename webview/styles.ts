/**
 * The panel's styles, applied as a constructed stylesheet (allowed by the strict CSP, no
 * inline <style>). Colours come only from VS Code's theme variables, so light, dark and
 * high-contrast themes follow; contrastBorder draws the outlines high contrast needs.
 */
export const CSS = `
:root { color-scheme: light dark; }
body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size, 13px); color: var(--vscode-foreground);
  background: var(--vscode-editor-background); margin: 0; padding: 0 20px 40px; line-height: 1.4; }
h1 { font-size: 1.5em; font-weight: 600; margin: 0; }
h2 { font-size: 1.15em; font-weight: 600; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--vscode-panel-border, var(--vscode-widget-border, transparent)); }
a { color: var(--vscode-textLink-foreground); }
:focus-visible { outline: 1px solid var(--vscode-focusBorder); outline-offset: 1px; }
.muted { color: var(--vscode-descriptionForeground); }
header.top { position: sticky; top: 0; z-index: 2; background: var(--vscode-editor-background); display: flex; flex-wrap: wrap; gap: 12px 20px;
  align-items: center; padding: 14px 0 10px; border-bottom: 1px solid var(--vscode-panel-border, var(--vscode-widget-border, transparent)); }
header.top .db { display: flex; align-items: center; gap: 8px; }
header.top .db vscode-single-select { min-width: 220px; }
header.top .buttons { display: flex; gap: 8px; flex-wrap: wrap; }
.banner { margin: 12px 0; padding: 8px 12px; border-left: 3px solid var(--vscode-editorWarning-foreground);
  background: var(--vscode-inputValidation-warningBackground, transparent); }
.banner.error { border-left-color: var(--vscode-errorForeground); background: var(--vscode-inputValidation-errorBackground, transparent); }
.progress { margin: 12px 0 0; min-height: 1.4em; }
.op { display: grid; grid-template-columns: minmax(180px, max-content) 1fr; gap: 4px 12px; align-items: center; margin: 4px 0; }
.bar { height: 4px; background: var(--vscode-progressBar-background); opacity: 0.25; position: relative; }
.bar > div { position: absolute; inset: 0 auto 0 0; background: var(--vscode-progressBar-background); }
.bar-wrap { position: relative; height: 4px; }
.bar-wrap .track { position: absolute; inset: 0; background: var(--vscode-progressBar-background); opacity: 0.2; }
.bar-wrap .fill { position: absolute; inset: 0 auto 0 0; background: var(--vscode-progressBar-background); }
.result.ok { color: var(--vscode-testing-iconPassed, var(--vscode-charts-green)); }
.result.fail { color: var(--vscode-errorForeground); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 10px; }
.card { padding: 10px 12px; border-radius: 4px; background: var(--vscode-editorWidget-background, var(--vscode-sideBar-background));
  border: 1px solid var(--vscode-widget-border, var(--vscode-contrastBorder, transparent)); min-width: 0; }
.card .k { font-size: 0.85em; color: var(--vscode-descriptionForeground); text-transform: uppercase; letter-spacing: 0.04em; }
.card .v { font-size: 1.2em; font-weight: 600; margin-top: 2px; overflow-wrap: anywhere; }
.card .d { color: var(--vscode-descriptionForeground); font-size: 0.92em; overflow-wrap: anywhere; }
.card.wide { grid-column: span 2; }
.card .v.bad, .bad-text { color: var(--vscode-errorForeground); }
.card .v.warn { color: var(--vscode-editorWarning-foreground); }
.card .v.good { color: var(--vscode-testing-iconPassed, var(--vscode-charts-green)); }
table.tiers { border-collapse: collapse; width: 100%; margin-top: 2px; font-size: 0.72em; font-weight: normal; }
table.tiers th { color: var(--vscode-descriptionForeground); }
table.tiers td, table.tiers th { padding: 1px 6px 1px 0; text-align: left; font-weight: normal; }
table.tiers td.num { text-align: right; }
.chart { width: 100%; max-width: 980px; height: auto; display: block; }
.chart .axis { stroke: var(--vscode-editorLineNumber-foreground, var(--vscode-descriptionForeground)); stroke-width: 1; }
.chart .tick, .chart .empty { fill: var(--vscode-descriptionForeground); font-size: 11px; font-family: var(--vscode-font-family); }
.chart .line { fill: none; stroke: var(--vscode-charts-blue); stroke-width: 1.6; }
.chart .area { fill: var(--vscode-charts-blue); opacity: 0.12; stroke: none; }
.chart .dot { fill: var(--vscode-charts-blue); }
.chart .fail { fill: var(--vscode-charts-red); stroke: var(--vscode-editor-background); stroke-width: 1; }
.chart .fail-mark { stroke: var(--vscode-charts-red); stroke-width: 2; fill: none; }
.legend { display: flex; gap: 16px; font-size: 0.9em; color: var(--vscode-descriptionForeground); margin-top: 4px; }
.legend .sw { display: inline-block; width: 10px; height: 10px; margin-right: 5px; vertical-align: -1px; border-radius: 50%; }
.legend .sw.ok { background: var(--vscode-charts-blue); }
.legend .sw.failed { background: var(--vscode-charts-red); }
.table-wrap { overflow: auto; border: 1px solid var(--vscode-widget-border, var(--vscode-panel-border, transparent)); }
table.history { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.history thead th { position: sticky; top: 0; background: var(--vscode-editorWidget-background, var(--vscode-editor-background)); text-align: left;
  font-weight: 600; padding: 0; border-bottom: 1px solid var(--vscode-widget-border, var(--vscode-panel-border, transparent)); white-space: nowrap; z-index: 1; }
table.history thead th:last-child { padding: 4px 8px; }
table.history th.num, table.history td.num { text-align: right; }
button.sort { all: unset; box-sizing: border-box; width: 100%; padding: 4px 8px; cursor: pointer; }
button.sort::after { content: attr(data-arrow); margin-left: 4px; font-size: 0.8em; }
button.sort:focus-visible { outline: 1px solid var(--vscode-focusBorder); outline-offset: -1px; }
table.history tbody tr:not(.spacer) { height: 26px; }
table.history tr.spacer td { padding: 0; height: 0; box-shadow: none; }
table.history td { padding: 0 8px; height: 26px; box-sizing: border-box; box-shadow: inset 0 -1px 0 var(--vscode-editorGroup-border, transparent); white-space: nowrap; }
table.history tbody tr:hover { background: var(--vscode-list-hoverBackground); }
table.history td.trigger { max-width: 240px; overflow: hidden; text-overflow: ellipsis; }
table.history td.empty { padding: 12px; color: var(--vscode-descriptionForeground); }
td.v-verified { color: var(--vscode-testing-iconPassed, var(--vscode-charts-green)); }
td.v-failed { color: var(--vscode-errorForeground); font-weight: 600; }
td.v-unverified { color: var(--vscode-editorWarning-foreground); }
.badge { font-size: 0.8em; padding: 0 5px; border-radius: 8px; background: var(--vscode-badge-background); color: var(--vscode-badge-foreground); }
td.actions button + button { margin-left: 4px; }
td.actions button { font: inherit; font-size: 0.9em; line-height: 16px; padding: 1px 7px; cursor: pointer; border-radius: 2px; color: var(--vscode-button-secondaryForeground);
  background: var(--vscode-button-secondaryBackground); border: 1px solid var(--vscode-button-border, transparent); }
td.actions button:hover { background: var(--vscode-button-secondaryHoverBackground); }
form.settings { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 14px; }
fieldset { border: 1px solid var(--vscode-widget-border, var(--vscode-panel-border, transparent)); border-radius: 4px; padding: 8px 14px 12px; margin: 0; min-width: 0; }
legend { font-weight: 600; padding: 0 4px; }
.row { display: grid; grid-template-columns: 190px 1fr; gap: 6px 12px; align-items: start; margin: 8px 0; }
.row > label { padding-top: 4px; }
.row.bool { display: block; }
.control { min-width: 0; }
vscode-textfield.short { width: 110px; }
vscode-textfield.inherits { width: 100%; max-width: 200px; }
.group { margin: 14px 0 0; padding-top: 8px; border-top: 1px solid var(--vscode-widget-border, var(--vscode-panel-border, transparent)); }
.group-title { font-weight: 600; }
.group-note { font-size: 0.92em; margin: 2px 0 4px; }
vscode-textfield.wide, .control vscode-single-select { width: 100%; max-width: 360px; }
.error { color: var(--vscode-errorForeground); font-size: 0.92em; }
.error:empty { display: none; }
.error-text { color: var(--vscode-errorForeground); }
.preview-label { margin-top: 10px; font-weight: 600; font-size: 0.92em; }
.preview { font-size: 0.95em; }
.preview p { margin: 4px 0; }
.preview .warn { color: var(--vscode-editorWarning-foreground); }
ol.runs, ul.removals { margin: 2px 0; padding-left: 20px; }
ul.removals code { font-family: var(--vscode-editor-font-family); font-size: 0.9em; }
.form-actions { grid-column: 1 / -1; display: flex; flex-wrap: wrap; align-items: center; gap: 10px; }
.form-actions vscode-single-select { width: 220px; }
.form-status { color: var(--vscode-descriptionForeground); }
.empty-state { margin: 40px 0; }
/* The backup and comparison views (webview/inspect.ts). */
header.top .titles { flex: 1 1 auto; min-width: 0; }
header.top .titles h1 { overflow-wrap: anywhere; }
.sub { margin: 2px 0 0; color: var(--vscode-descriptionForeground); overflow-wrap: anywhere; }
h1 .badge { font-size: 0.55em; vertical-align: middle; font-weight: normal; }
h3 { font-size: 1em; font-weight: 600; margin: 16px 0 6px; }
#summary { margin: 10px 0 0; }
table.grid { border-collapse: collapse; font-variant-numeric: tabular-nums; }
table.grid th, table.grid td { text-align: left; padding: 3px 10px; border-bottom: 1px solid var(--vscode-editorGroup-border, var(--vscode-widget-border, transparent)); white-space: nowrap; vertical-align: top; }
table.grid thead th { background: var(--vscode-editorWidget-background, var(--vscode-editor-background)); font-weight: 600; position: sticky; top: 0; z-index: 1; }
table.grid th.num, table.grid td.num { text-align: right; }
table.grid tbody tr:hover { background: var(--vscode-list-hoverBackground); }
table.grid tr.selected { background: var(--vscode-list-inactiveSelectionBackground); }
table.grid tr.same td { color: var(--vscode-descriptionForeground); }
table.grid td.added { color: var(--vscode-gitDecoration-addedResourceForeground, var(--vscode-charts-green)); font-weight: 600; }
table.grid td.removed { color: var(--vscode-gitDecoration-deletedResourceForeground, var(--vscode-charts-red)); font-weight: 600; }
table.grid td.changed { color: var(--vscode-gitDecoration-modifiedResourceForeground, var(--vscode-charts-yellow)); font-weight: 600; }
table.grid td.actions { white-space: nowrap; }
table.grid td.actions > * + * { margin-left: 6px; }
.table-wrap.fit { width: fit-content; max-width: 100%; }
table.data td { max-width: 420px; overflow: hidden; text-overflow: ellipsis; font-family: var(--vscode-editor-font-family); font-size: 0.92em; }
.rows-wrap { max-height: 520px; }
button.act { font: inherit; font-size: 0.9em; line-height: 16px; padding: 1px 8px; cursor: pointer; border-radius: 2px; color: var(--vscode-button-secondaryForeground);
  background: var(--vscode-button-secondaryBackground); border: 1px solid var(--vscode-button-border, transparent); }
button.act:hover:not(:disabled) { background: var(--vscode-button-secondaryHoverBackground); }
button.act:disabled { opacity: 0.5; cursor: default; }
button.act.restore { color: var(--vscode-button-foreground); background: var(--vscode-button-background); }
button.act.restore:hover:not(:disabled) { background: var(--vscode-button-hoverBackground); }
button.link { all: unset; cursor: pointer; color: var(--vscode-textLink-foreground); font-family: var(--vscode-editor-font-family); }
button.link:hover { text-decoration: underline; }
button.link:focus-visible { outline: 1px solid var(--vscode-focusBorder); }
.pager { display: flex; align-items: center; gap: 10px; margin: 6px 0 8px; }
.page-text { color: var(--vscode-descriptionForeground); }
.null { color: var(--vscode-descriptionForeground); font-style: italic; }
.blob { color: var(--vscode-debugTokenExpression-string, var(--vscode-foreground)); }
.obj { margin: 6px 0 10px; }
.obj-name code { font-weight: 600; }
pre.sql { margin: 2px 0 0; padding: 6px 10px; white-space: pre-wrap; overflow-wrap: anywhere; font-family: var(--vscode-editor-font-family); font-size: 0.92em;
  background: var(--vscode-textCodeBlock-background, var(--vscode-editorWidget-background)); border-radius: 3px; }
code { font-family: var(--vscode-editor-font-family); }
ul.schema-list { margin: 0; padding-left: 20px; }
ul.schema-list li.added::marker { content: '+ '; color: var(--vscode-charts-green); }
ul.schema-list li.removed::marker { content: '− '; color: var(--vscode-charts-red); }
ul.schema-list li.changed::marker { content: '~ '; color: var(--vscode-charts-yellow); }
.banner.ok { border-left-color: var(--vscode-testing-iconPassed, var(--vscode-charts-green)); background: var(--vscode-editorWidget-background, transparent); }
.banner ul { margin: 4px 0 0; padding-left: 18px; }
.busy { color: var(--vscode-descriptionForeground); font-style: italic; }
table.side-by-side th.side { text-align: center; border-bottom: 2px solid var(--vscode-widget-border, transparent); }
table.side-by-side .split { border-left: 2px solid var(--vscode-widget-border, var(--vscode-editorGroup-border, transparent)); }
table.side-by-side tbody th { font-weight: normal; text-align: left; }
table.side-by-side tr.added th { color: var(--vscode-gitDecoration-addedResourceForeground, var(--vscode-charts-green)); }
table.side-by-side tr.removed th { color: var(--vscode-gitDecoration-deletedResourceForeground, var(--vscode-charts-red)); }
table.side-by-side tr.changed th { color: var(--vscode-gitDecoration-modifiedResourceForeground, var(--vscode-charts-yellow)); }
table.side-by-side td.diff.new { background: var(--vscode-diffEditor-insertedTextBackground, rgba(155, 185, 85, 0.2)); }
table.side-by-side td.diff.old { background: var(--vscode-diffEditor-removedTextBackground, rgba(255, 0, 0, 0.2)); }
table.side-by-side td.absent { color: var(--vscode-descriptionForeground); text-align: center; }
@media (forced-colors: active) { .chart .line { stroke: CanvasText; } }
`;
