// A fake system emulator for test/harness/libqtest.test.ts: speaks just enough qtest and QMP
// to let the libqtest client start, talk and quit, and logs what it saw (one JSON value per line)
// to $FAKE_LOG.  $FAKE_MODE picks a behaviour: normal (QMP connects first, as QEMU does),
// qtest-first, no-qtest (never connects qtest), status (exit $FAKE_STATUS on SIGTERM),
// stubborn (ignores SIGTERM), suicide (SIGKILLs itself on SIGTERM).
import { appendFileSync } from 'node:fs';
import { connect } from 'node:net';

const mode = process.env.FAKE_MODE ?? 'normal';
const log = (v) => appendFileSync(process.env.FAKE_LOG, JSON.stringify(v) + '\n');
const argv = process.argv.slice(2);
log({ argv });
const qtestPath = argv[argv.indexOf('-qtest') + 1].replace(/^unix:/, '');
const qmpPath = /path=([^,]+)/.exec(argv[argv.indexOf('-chardev') + 1])[1];

let greet = null;
function qmp() {
  const s = connect(qmpPath);
  s.setEncoding('utf8');
  let buf = '';
  greet = () => {
    log('greeting');
    // The greeting split in two writes, to exercise the stream reader.
    s.write('{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 0}}, ');
    setTimeout(() => s.write('"capabilities": []}}\r\n'), 20);
  };
  if (mode === 'no-qtest') greet();
  s.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const cmd = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      log(cmd.execute);
      if (cmd.execute === 'system_reset') {
        // Event, then the answer, in one chunk; a string holding braces.
        s.write('{"event": "RESET", "data": {"reason": "}{\\"x"}}{"return": {}}\n');
      } else if (cmd.execute === 'query-machines') {
        s.write('{"return": [{"name": "q35-fake", "alias": "q35"}, {"name": "none"}]}\n');
      } else if (cmd.execute === 'qom-list-types') {
        log({ args: cmd.arguments });
        s.write('{"return": [{"name": "edu", "parent": "pci-device"}]}\n');
      } else {
        s.write('{"return": {}}\n');
      }
    }
  });
}

function qtest() {
  const s = connect(qtestPath);
  s.setEncoding('utf8');
  let buf = '';
  s.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      log(line);
      if (line === 'endianness') {
        s.write('OK little\n');
        greet();
      } else if (line.startsWith('readl ')) s.write('OK 0x0000000012345678\n');
      else if (line.startsWith('irq_intercept_in')) s.write('OK\nIRQ raise 3\n');
      else if (line.startsWith('inb ')) s.write('OK 0x00\n');
      else if (line.startsWith('read ')) s.write('OK 0xa5b6\n');
      else s.write('FAIL Unknown command\n');
    }
  });
}

if (mode === 'qtest-first') {
  qtest();
  setTimeout(qmp, 50);
} else {
  qmp();
  if (mode !== 'no-qtest') setTimeout(qtest, 50);
}

process.on('SIGTERM', () => {
  log('SIGTERM');
  if (mode === 'stubborn') return;
  if (mode === 'suicide') process.kill(process.pid, 'SIGKILL');
  process.exit(mode === 'status' ? Number(process.env.FAKE_STATUS) : 0);
});
setInterval(() => {}, 1000);
