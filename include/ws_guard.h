/* ws_guard: finds the websocket connections whose client sends an unmasked frame, which
 * RFC 6455 section 5.1 says the server must close and libwebsockets 4.1.6 accepts, and
 * keeps those frames from reaching libwebsockets; server.c then closes them with 1002.
 *
 * DESIGN. lws 4.1.6 reads the mask bit of each client frame into a private field, never
 * acts on it and has no accessor for it, so the check needs the bytes as they come off the
 * socket. ws_guard.c defines recv() and SSL_read(), the two calls lws reads a connection
 * with (a definition in the executable wins over the shared libraries'), passes each call
 * to the real function, and for the descriptors the server watches follows the HTTP head
 * and then, on a websocket handshake, the frame headers of the byte stream. The first
 * unmasked frame marks the connection: the call returns only the bytes before that frame,
 * later calls on it return EAGAIN, and lws is asked for a writeable callback, in which the
 * server closes the connection. Descriptors not watched, and every connection that is not a
 * websocket, pass through untouched. Only the lws service thread may call these functions
 * (it is the only thread that reads sockets). */
#ifndef CD_WS_GUARD_H
#define CD_WS_GUARD_H

struct lws;

/* Starts watching descriptor fd, a connection just accepted (its HTTP head comes first);
 * forgets what was known of an earlier connection on the same descriptor. Returns 0, or
 * CD_ENOMEM (then fd is not watched). */
int ws_guard_watch(int fd);

/* The websocket handshake of fd succeeded and wsi is its connection: an unmasked frame found
 * from now on (or already) asks lws for a writeable callback on wsi. A connection whose
 * handshake came after other HTTP requests is followed from here on. */
void ws_guard_established(int fd, struct lws *wsi);

/* 1 if fd's client sent an unmasked frame: close the connection with 1002. */
int ws_guard_is_unmasked(int fd);

/* Stops watching fd (the connection closed) and frees what was kept for it. */
void ws_guard_forget(int fd);

#endif
