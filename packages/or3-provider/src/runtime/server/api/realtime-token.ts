/** `GET /api/or3sync/realtime-token`: a gateway token for the session's user, for the browser's WebSocket. */
import { createRealtimeTokenHandler } from '../../../realtime-token.js';
import { gatewayClient, sessionUserId } from '../host.js';

export default createRealtimeTokenHandler(gatewayClient, sessionUserId);
