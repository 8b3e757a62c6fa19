// Lint config for bench/: plain CommonJS Node.js scripts, outside the TypeScript project. ESLint 10
// looks up the nearest config from each file, so this one applies here instead of the root one
// (whose type-checked rules need every file in a tsconfig).
import eslint from '@eslint/js';

const node = Object.fromEntries(
  [
    'require',
    'module',
    'exports',
    '__dirname',
    '__filename',
    'process',
    'console',
    'Buffer',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'setImmediate',
    'fetch',
    'URL',
    'AbortController',
    'AbortSignal',
    'performance',
    'structuredClone',
  ].map((name) => [name, 'readonly']),
);

export default [
  eslint.configs.recommended,
  {
    files: ['**/*.js'],
    languageOptions: { ecmaVersion: 2023, sourceType: 'commonjs', globals: node },
    rules: {
      eqeqeq: ['error', 'always'],
      curly: ['error', 'all'],
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
];
