// Preloaded (NODE_OPTIONS=--require) into Node programs of a sandbox that has
// egress. Node 20's fetch ignores HTTP_PROXY; this routes fetch through the
// egress proxy named by the environment. Bundled with undici at build time.
const { EnvHttpProxyAgent, setGlobalDispatcher } = require("undici");

setGlobalDispatcher(new EnvHttpProxyAgent());
