// Lint: the dependency rules of STYLE.md ("who may import whom"), enforced.
import tseslint from 'typescript-eslint';

const restrict = (patterns, message) => ['error', { patterns: patterns.map((group) => ({ group, message })) }];

export default tseslint.config(
  { ignores: ['dist/**', 'out/**', '.cache/**', 'node_modules/**', 'bench/data/**'] },
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {},
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': restrict(
        [['vscode'], ['**/extension/**', '**/cli/**', '**/webview/**']],
        'src/core is the engine: it never imports vscode, the front ends or the webview.',
      ),
    },
  },
  {
    files: ['src/cli/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': restrict([['vscode'], ['**/extension/**', '**/webview/**']], 'the CLI imports only src/core.'),
    },
  },
  {
    files: ['src/extension/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': restrict([['**/cli/**']], 'the extension and the CLI never import each other.'),
    },
  },
  {
    files: ['webview/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { paths: [{ name: 'vscode', message: 'the webview runs in a browser frame: no vscode.' }] }],
    },
  },
);
