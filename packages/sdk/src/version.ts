/** This package's version, sent in the User-Agent (test/user-agent.test.ts checks it matches package.json). */
export const SDK_VERSION = '0.1.0';
