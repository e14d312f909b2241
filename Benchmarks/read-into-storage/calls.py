# Calls per iteration of the functions named below, from two callgrind outputs (measure.sh).
import re, sys
def calls(path, names):
    ids = {}; total = {n: 0 for n in names}; cur = None
    for line in open(path):
        m = re.match(r'cfn=\((\d+)\)(?: (.*))?', line)
        if m:
            if m.group(2): ids[m.group(1)] = m.group(2).strip()
            cur = ids.get(m.group(1)); continue
        m = re.match(r'fn=\((\d+)\)(?: (.*))?', line)
        if m and m.group(2): ids[m.group(1)] = m.group(2).strip()
        if line.startswith('calls=') and cur in total:
            total[cur] += int(line.split()[0][6:])
            cur = None
    return total
names = ['malloc', 'free', 'swift_task_alloc', 'read', 'send']
# Calls per iteration: (calls at 12,000 iterations - calls at 2,000) / 10,000.
for m in sys.argv[1:]:
    a = calls(f'cg.{m}.2000', names); b = calls(f'cg.{m}.12000', names)
    print(m, {n: (b[n]-a[n])/10000 for n in names})
