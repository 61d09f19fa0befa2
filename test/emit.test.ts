import t from 'tap'
import { c, cBool, cConstant, cInt, cString, cStringArray, cStringList, CCode } from '../shim/emit.js'
import { ConfigError } from '../launcher/errors.js'

t.test('printable ASCII passes, the three dangerous characters are escaped', async (t) => {
  t.equal(cString('/usr/bin/toolbox').text, '"/usr/bin/toolbox"')
  t.equal(cString('a"b').text, '"a\\"b"')
  t.equal(cString('a\\b').text, '"a\\\\b"')
  // "??/" is a trigraph for a backslash in older C: every ? is escaped.
  t.equal(cString('??/').text, '"\\?\\?/"')
})

t.test('every other byte is a three-digit octal escape, never \\x', async (t) => {
  t.equal(cString('\n#include <x>').text, '"\\012#include <x>"')
  t.equal(cString('é').text, '"\\303\\251"')
  t.equal(cString('\x7f\x01').text, '"\\177\\001"')
  // An octal escape followed by a digit stays three digits long.
  t.equal(cString('\x011').text, '"\\0011"')
  t.notMatch(cString('日本🙂\t').text, /\\x/)
})

t.test('comment terminators are harmless inside a literal', async (t) => {
  t.equal(cString('*/ int x; /*').text, '"*/ int x; /*"')
})

t.test('NUL and lone surrogates are refused', async (t) => {
  t.throws(() => cString('a\0b'), ConfigError)
  t.throws(() => cString('a\ud800b'), ConfigError)
})

t.test('arrays end with a NULL pointer', async (t) => {
  t.equal(cStringArray([]).text, '{ 0 }')
  t.equal(cStringArray(['a', 'b"']).text, '{ "a", "b\\"", 0 }')
})

t.test('integers and booleans', async (t) => {
  t.equal(cInt(62).text, '62')
  t.throws(() => cInt(-1))
  t.throws(() => cInt(1.5))
  t.equal(cBool(true).text, '1')
  t.equal(cBool(false).text, '0')
})

t.test('the c tag takes only emitted values', async (t) => {
  const name = cString('x')
  t.equal(c`static const char N[] = ${name};`.text, 'static const char N[] = "x";')
  // A raw string smuggled past the type system is refused at run time.
  const smuggled = '"; system("rm -rf /"); "' as unknown as CCode
  t.throws(() => c`x = ${smuggled};`, TypeError)
  // Escapes in the template text are the template author's C, kept raw.
  t.equal(c`'\n'`.text, "'\\n'")
})

t.test('string lists: NUL after each, none needing a relocation', async (t) => {
  t.equal(cStringList(['/lib', '/usr/lib']).text, '"/lib\\000/usr/lib\\000"')
  t.equal(cStringList([]).text, '""')
  // A digit after the separator stays a digit: octal escapes stop at three.
  t.equal(cStringList(['a', '1']).text, '"a\\0001\\000"')
  t.throws(() => cStringList(['a', '']), RangeError)
})

t.test('constants from hostshim\'s own tables only', async (t) => {
  t.equal(cConstant('ENOENT').text, 'ENOENT')
  t.throws(() => cConstant('x; system("id")'), RangeError)
  t.throws(() => cConstant('enoent'), RangeError)
})
