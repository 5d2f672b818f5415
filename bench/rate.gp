# rate.gp: made by benchlab; gnuplot rate.gp writes rate.png.
set terminal png size 900,560
set output 'rate.png'
set title "NAT-PMP new mappings per second (16 clients)\n0 mappings present plotted at 1"
set logscale xy
set xlabel 'mappings already present'
set ylabel 'new mappings per second'
set xrange [0.5:300000]
set format x '10^{%L}'
set format y '10^{%L}'
set grid
set key top right
plot 'rate.dat' index 0 using 1:2 with linespoints linewidth 2 pointtype 7 title 'portleased', \
     'rate.dat' index 1 using 1:2 with linespoints linewidth 2 pointtype 7 title 'portleased-state', \
     'rate.dat' index 2 using 1:2 with linespoints linewidth 2 pointtype 7 title 'portleased-iptables-nft', \
     'rate.dat' index 3 using 1:2 with linespoints linewidth 2 pointtype 7 title 'portleased-iptables-legacy', \
     'rate.dat' index 4 using 1:2 with linespoints linewidth 2 pointtype 7 title 'miniupnpd'
