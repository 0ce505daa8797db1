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
