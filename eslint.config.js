import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'shared/generated/', 'test-artifacts/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read configuration through shared/infra/config.ts.' }],
    },
  },
  // The tiers' boundaries: the api and the worker share code only through shared/, which imports neither.
  {
    files: ['api/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/worker/*', '**/worker/**'], message: 'The api does not import the worker: move what both need to shared/.' }] },
      ],
    },
  },
  {
    files: ['worker/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/api/*', '**/api/**'], message: 'The worker does not import the api: move what both need to shared/.' }] },
      ],
    },
  },
  {
    files: ['shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/api/*', '**/api/**', '**/worker/*', '**/worker/**'], message: 'shared/ is below both tiers: it imports neither.' }] },
      ],
    },
  },
  {
    // The config loader and the processes that launch others are where the environment is read.
    files: ['shared/infra/config.ts', 'scripts/start-all.ts', 'scripts/bench/**', 'test/**', 'prisma.config.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // The mocha configuration files are CommonJS run by node: they read CI from the environment.
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', process: 'readonly' } },
    rules: { 'no-restricted-properties': 'off', '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // chai assertions such as `expect(x).to.exist` are expressions by design.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-unused-expressions': 'off' },
  },
);
