// The webhook deliveries of webhooks.test.mjs (signed events in order, retries, delivery after
// SIGKILL and restart, failure past the maximum age, redelivery from the dashboard),
// run again with every server on PostgreSQL: the same behaviour on both backends.
process.env.CAREDESK_TEST_BACKEND = 'postgres';
await import('./webhooks.test.mjs');
