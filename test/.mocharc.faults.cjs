// The fault suite (npm run test:faults); like .mocharc.cjs, nothing may be skipped in CI.
module.exports = {
  'node-option': ['import=tsx'],
  require: ['test/setup.ts'],
  spec: ['test/faults/**/*.test.ts'],
  timeout: 240000,
  exit: true,
  'forbid-only': true,
  'forbid-pending': process.env.CI === 'true',
};
