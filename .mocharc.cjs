// In CI (CI=true, set by .ci/run) a skipped test fails the run: every test there must run, the
// browser tests included (.ci/run installs chromium).
module.exports = {
  'node-option': ['import=tsx'],
  require: ['test/setup.ts'],
  spec: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
  timeout: 30000,
  exit: true,
  'forbid-only': true,
  'forbid-pending': process.env.CI === 'true',
};
