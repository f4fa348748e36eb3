// The team figures of report.test.mjs (FCR, handle time, SLAs, NPS, the weekly report from
// the command line and REST),
// run again with every server on PostgreSQL: the same behaviour on both backends.
process.env.CAREDESK_TEST_BACKEND = 'postgres';
await import('./report.test.mjs');
