// One REST call against a test server, for every integration test that talks to /api:
//
//   const r = await rest(srv.url, 'POST', '/api/articles', { token, body: { id: 'x', ... } });
//   assert.equal(r.status, 201); r.json.id;
//
// Options: token (sent as a Bearer token), body (sent as JSON), raw (a string sent as the
// JSON body as it is, for malformed bodies), headers (more request headers). Resolves with
// { status, headers, text, json }: json is the parsed body, or null when it is not JSON.
export async function rest(baseUrl, method, path, { token, body, raw, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let payload;
  if (raw !== undefined) payload = raw;
  else if (body !== undefined) payload = JSON.stringify(body);
  if (payload !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(baseUrl + path, { method, headers: h, body: payload });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* a page, or empty */ }
  return { status: res.status, headers: res.headers, text, json };
}
