// Theme variables as VS Code injects them into a webview (a subset: the ones the panel and
// @vscode-elements read), from the Light Modern, Dark Modern and Dark High Contrast themes.
const common = {
  'font-family': '-apple-system, BlinkMacSystemFont, "Segoe WPC", "Segoe UI", "Ubuntu", "Droid Sans", sans-serif',
  'font-size': '13px',
  'font-weight': 'normal',
  'editor-font-family': '"Droid Sans Mono", "monospace", monospace',
};

export const THEMES = {
  light: {
    bodyClass: 'vscode-light',
    vars: {
      ...common,
      foreground: '#3b3b3b', 'editor-background': '#ffffff', descriptionForeground: '#717171', focusBorder: '#005fb8',
      'button-background': '#005fb8', 'button-foreground': '#ffffff', 'button-hoverBackground': '#0258a8', 'button-border': '#0000001a',
      'button-secondaryBackground': '#e5e5e5', 'button-secondaryForeground': '#3b3b3b', 'button-secondaryHoverBackground': '#cccccc',
      'widget-border': '#e5e5e5', 'panel-border': '#e5e5e5', 'editorWidget-background': '#f8f8f8', 'sideBar-background': '#f8f8f8',
      'settings-textInputBackground': '#ffffff', 'settings-textInputBorder': '#cecece', 'settings-textInputForeground': '#3b3b3b', 'settings-dropdownBackground': '#ffffff',
      'settings-dropdownForeground': '#3b3b3b', 'settings-dropdownBorder': '#cecece', 'settings-dropdownListBorder': '#cecece',
      'settings-checkboxBackground': '#f8f8f8', 'settings-checkboxForeground': '#3b3b3b', 'settings-checkboxBorder': '#cecece',
      'checkbox-background': '#f8f8f8', 'checkbox-border': '#cecece', 'checkbox-foreground': '#3b3b3b',
      'input-placeholderForeground': '#767676', 'list-hoverBackground': '#f2f2f2', 'list-activeSelectionBackground': '#e8e8e8',
      'list-activeSelectionForeground': '#000000', 'list-focusOutline': '#005fb8', 'list-highlightForeground': '#0066bf',
      errorForeground: '#f85149', 'editorWarning-foreground': '#bf8803', 'charts-blue': '#1a85ff', 'charts-red': '#e51400',
      'charts-green': '#388a34', 'testing-iconPassed': '#388a34', 'badge-background': '#cccccc', 'badge-foreground': '#3b3b3b',
      'progressBar-background': '#005fb8', 'textLink-foreground': '#005fb8', 'inputValidation-errorBackground': '#f2dede',
      'inputValidation-errorBorder': '#be1100', 'inputValidation-warningBackground': '#f6f5d2', 'editorLineNumber-foreground': '#6e7681',
      'editorGroup-border': '#e5e5e5', 'icon-foreground': '#3b3b3b', 'widget-shadow': '#00000029', 'scrollbar-shadow': '#dddddd',
    },
  },
  dark: {
    bodyClass: 'vscode-dark',
    vars: {
      ...common,
      foreground: '#cccccc', 'editor-background': '#1f1f1f', descriptionForeground: '#9d9d9d', focusBorder: '#0078d4',
      'button-background': '#0078d4', 'button-foreground': '#ffffff', 'button-hoverBackground': '#026ec1', 'button-border': '#ffffff12',
      'button-secondaryBackground': '#313131', 'button-secondaryForeground': '#cccccc', 'button-secondaryHoverBackground': '#3c3c3c',
      'widget-border': '#313131', 'panel-border': '#2b2b2b', 'editorWidget-background': '#202020', 'sideBar-background': '#181818',
      'settings-textInputBackground': '#313131', 'settings-textInputBorder': '#3c3c3c', 'settings-textInputForeground': '#cccccc', 'settings-dropdownBackground': '#313131',
      'settings-dropdownForeground': '#cccccc', 'settings-dropdownBorder': '#3c3c3c', 'settings-dropdownListBorder': '#454545',
      'settings-checkboxBackground': '#313131', 'settings-checkboxForeground': '#cccccc', 'settings-checkboxBorder': '#3c3c3c',
      'checkbox-background': '#313131', 'checkbox-border': '#3c3c3c', 'checkbox-foreground': '#cccccc',
      'input-placeholderForeground': '#989898', 'list-hoverBackground': '#2a2d2e', 'list-activeSelectionBackground': '#04395e',
      'list-activeSelectionForeground': '#ffffff', 'list-focusOutline': '#0078d4', 'list-highlightForeground': '#2aaaff',
      errorForeground: '#f85149', 'editorWarning-foreground': '#cca700', 'charts-blue': '#3794ff', 'charts-red': '#f14c4c',
      'charts-green': '#89d185', 'testing-iconPassed': '#73c991', 'badge-background': '#616161', 'badge-foreground': '#f8f8f8',
      'progressBar-background': '#0078d4', 'textLink-foreground': '#4daafc', 'inputValidation-errorBackground': '#5a1d1d',
      'inputValidation-errorBorder': '#be1100', 'inputValidation-warningBackground': '#352a05', 'editorLineNumber-foreground': '#6e7681',
      'editorGroup-border': '#ffffff17', 'icon-foreground': '#cccccc', 'widget-shadow': '#0000005c', 'scrollbar-shadow': '#000000',
    },
  },
  'high-contrast': {
    bodyClass: 'vscode-high-contrast',
    vars: {
      ...common,
      foreground: '#ffffff', 'editor-background': '#000000', descriptionForeground: '#ffffffb3', focusBorder: '#f38518', contrastBorder: '#6fc3df',
      'button-background': '#000000', 'button-foreground': '#ffffff', 'button-border': '#6fc3df', 'button-secondaryBackground': '#000000',
      'button-secondaryForeground': '#ffffff', 'widget-border': '#6fc3df', 'panel-border': '#6fc3df', 'editorWidget-background': '#0c141f',
      'settings-textInputBackground': '#000000', 'settings-textInputBorder': '#6fc3df', 'settings-textInputForeground': '#ffffff', 'settings-dropdownBackground': '#000000',
      'settings-dropdownForeground': '#ffffff', 'settings-dropdownBorder': '#6fc3df', 'settings-checkboxBackground': '#000000',
      'settings-checkboxBorder': '#6fc3df', 'checkbox-border': '#6fc3df', errorForeground: '#f48771', 'editorWarning-foreground': '#ffd370',
      'charts-blue': '#3794ff', 'charts-red': '#f14c4c', 'charts-green': '#89d185', 'badge-background': '#000000', 'badge-foreground': '#ffffff',
      'progressBar-background': '#6fc3df', 'textLink-foreground': '#21a6ff', 'list-hoverBackground': '#000000', 'editorGroup-border': '#6fc3df',
      'inputValidation-errorBorder': '#f48771', 'inputValidation-errorBackground': '#5a1d1d',
    },
  },
};

/** The `:root { --vscode-...: ... }` block of a theme. */
export function themeCss(name) {
  const t = THEMES[name];
  return `:root{${Object.entries(t.vars).map(([k, v]) => `--vscode-${k}:${v};`).join('')}}`;
}
