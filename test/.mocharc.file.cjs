// npm run test:file -- <file>...: the files named only (the default config's spec list would be merged in).
const base = require('../.mocharc.cjs');
module.exports = { ...base, spec: [], timeout: 240000 };
