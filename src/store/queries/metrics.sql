-- name: metricsMessagesByState
-- Messages per direction, partner and state, for the `icros_messages` gauge at scrape time.
-- One GROUP BY over the messages table; cheap next to a 15 s scrape interval.
SELECT direction, peer, state, count(*)::int AS n FROM messages GROUP BY direction, peer, state;
