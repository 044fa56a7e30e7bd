import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';

describe('job settings', () => {
  it('default to one process doing everything, without Redis', () => {
    const config = loadConfig({}, []);
    expect(config.role).toBe('all');
    expect(config.redisUrl).toBe('');
    expect(config.jobAttempts).toBe(3);
  });

  it('refuse api and worker roles without MAGMA_REDIS_URL, and URLs that are not Redis', () => {
    for (const role of ['api', 'worker']) {
      expect(() => loadConfig({ MAGMA_ROLE: role }, [])).toThrow(ConfigError);
      expect(() => loadConfig({ MAGMA_ROLE: role }, [])).toThrow(/MAGMA_REDIS_URL/);
    }
    expect(() => loadConfig({ MAGMA_ROLE: 'gpu' }, [])).toThrow(/MAGMA_ROLE/);
    expect(() => loadConfig({ MAGMA_REDIS_URL: 'http://localhost:6379' }, [])).toThrow(
      /MAGMA_REDIS_URL.*redis:\/\//,
    );
    const worker = loadConfig({}, ['--role', 'worker', '--redis-url', 'redis://127.0.0.1:6379']);
    expect(worker).toMatchObject({ role: 'worker', redisUrl: 'redis://127.0.0.1:6379' });
  });
});
