// The conversation tests of chat.test.mjs (protocol, handoff, claim race, resume after a
// dropped connection and after kill -9, bad input, metrics, teaching), run again with every
// server on PostgreSQL: the same behaviour on both backends.
process.env.CAREDESK_TEST_BACKEND = 'postgres';
await import('./chat.test.mjs');
