// The QA audits of qa.test.mjs (the weekly sample, scoring, rights, calibration),
// run again with every server on PostgreSQL: the same behaviour on both backends.
process.env.CAREDESK_TEST_BACKEND = 'postgres';
await import('./qa.test.mjs');
