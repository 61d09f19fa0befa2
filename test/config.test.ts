import t from 'tap'
import { validateConfig } from '../launcher/config.js'
import { ConfigError } from '../launcher/errors.js'

t.test('defaults', async (t) => {
  const c = validateConfig({ name: 'toolbox', target: '/usr/libexec/toolbox/toolbox' })
  t.equal(c.hostRoot, '/run/host')
  t.equal(c.debugEnv, 'HOSTSHIM_DEBUG')
  t.same(c.libDirs, [])
})

t.test('refusals name the field', async (t) => {
  t.throws(() => validateConfig({ name: 'x', target: 'rel' }), new ConfigError('target', 'must be an absolute path, got "rel"'))
})
