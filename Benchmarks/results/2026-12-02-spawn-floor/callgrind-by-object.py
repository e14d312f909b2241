# Per-task instructions by shared object (libswift_Concurrency, libswiftCore, libc, IOPool, the bench),
# from pairs of callgrind-scheduler.sh runs: (Ir at N2 − Ir at N1) / tasks, per callgrind_annotate function.
import subprocess,re,collections,sys
def prof(f):
    out=subprocess.run(['callgrind_annotate','--threshold=100','--auto=no',f],capture_output=True,text=True).stdout
    d=collections.Counter()
    for l in out.splitlines():
        m=re.match(r'\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.*)',l)
        if m and ':' in m.group(2):
            name=m.group(2).strip()
            o=re.search(r'\[([^\]]*)\]\s*$',name)
            obj=o.group(1).split('/')[-1] if o else 'libc/ld.so'
            if obj.startswith('ld-linux') or obj.startswith('libc.so'): obj='libc/ld.so'
            if 'iopool' in obj:
                obj='IOPool' if 'IOPool' in name else 'iopool bench+floor'
            d[obj]+=int(m.group(1).replace(',',''))
    return d
import os
os.chdir(os.environ.get('WORK', '/tmp/iopool-callgrind'))
# (benchmark, N1, N2, tasks between the two runs): cg-B-RUNTIME-N.out files from callgrind-scheduler.sh
for b,n1,n2,tasks in (('chained_spawn',3,13,10010),('spawn_many_local',1,3,20002)):
  for rt in ('floor-1','stealing-preference','stealing','global'):
    a,c=prof(f'cg-{b}-{rt}-{n1}.out'),prof(f'cg-{b}-{rt}-{n2}.out')
    d={k:(c[k]-a[k])/tasks for k in set(a)|set(c)}
    print(f'{b:18} {rt:20} total {sum(d.values()):6.0f}  '+'  '.join(f'{k}={v:.0f}' for k,v in sorted(d.items(),key=lambda x:-x[1]) if abs(v)>=5))
