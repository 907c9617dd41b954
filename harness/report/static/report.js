/* Draws a report page's charts with uPlot from the JSON specs in #report-data
   (built by harness/report/charts.py). Fault windows are shaded and labelled, Jepsen style. */
(function () {
  "use strict";
  var specs = JSON.parse(document.getElementById("report-data").textContent).charts;
  var plots = [];

  function faultBands(faults) {
    return {
      hooks: {
        drawClear: [function (u) {
          var ctx = u.ctx, box = u.bbox, dpr = window.devicePixelRatio || 1;
          ctx.save();
          ctx.beginPath();
          ctx.rect(box.left, box.top, box.width, box.height);
          ctx.clip();
          ctx.font = (11 * dpr) + "px system-ui, sans-serif";
          faults.forEach(function (f, i) {
            var x0 = u.valToPos(f.from, "x", true);
            var x1 = f.to == null ? box.left + box.width : u.valToPos(f.to, "x", true);
            x1 = Math.max(x1, x0 + 2 * dpr);  // an instantaneous fault still shows as a line
            ctx.fillStyle = "rgba(214, 39, 40, 0.14)";
            ctx.fillRect(x0, box.top, x1 - x0, box.height);
            ctx.fillStyle = "rgba(150, 20, 20, 0.95)";
            // Stagger labels so neighbouring faults stay readable.
            ctx.fillText(f.label, x0 + 3 * dpr, box.top + (12 + 12 * (i % 3)) * dpr);
          });
          ctx.restore();
        }]
      }
    };
  }

  function options(spec, width) {
    var top = spec.y.max, names = spec.x.names;
    var xAxis = { label: spec.x.label };
    var xSeries = { label: spec.x.short };
    var xScale = spec.x.log ? { time: false, distr: 3 } : { time: spec.x.time };
    if (names) {  // x is a run number: every run on the axis, ticks at whole runs, the legend names the run
      xScale.range = function () { return [0.5, names.length + 0.5]; };
      xAxis.incrs = [1, 2, 5, 10, 20, 50, 100, 200, 500];
      xAxis.values = function (u, splits) { return splits.map(function (v) { return "#" + v; }); };
      xSeries.value = function (u, v) { return v == null ? "--" : names[v - 1] || v; };
    }
    return {
      title: spec.title,
      width: width,
      height: 240,
      scales: {
        x: xScale,
        y: { range: function (u, min, max) { return [0, top != null ? top : Math.max(max * 1.05, 1)]; } }
      },
      axes: [xAxis, { label: spec.y.label }],
      series: [xSeries].concat(spec.series.map(function (s) {
        return { label: s.label, stroke: s.color, width: 1.5, dash: s.dash ? [6, 4] : undefined, spanGaps: true,
                 points: { show: spec.points } };
      })),
      cursor: spec.sync ? { sync: { key: spec.sync } } : {},
      plugins: spec.faults.length ? [faultBands(spec.faults)] : []
    };
  }

  function widthOf(el) {
    return Math.max(280, Math.floor(el.getBoundingClientRect().width) - 4);
  }

  specs.forEach(function (spec) {
    var el = document.getElementById(spec.id);
    try {
      plots.push({ el: el, plot: new uPlot(options(spec, widthOf(el)), spec.data, el) });
      el.setAttribute("data-rendered", "1");
    } catch (err) {
      console.error("chart " + spec.id + " failed: " + err);
    }
  });

  window.addEventListener("resize", function () {
    plots.forEach(function (p) { p.plot.setSize({ width: widthOf(p.el), height: 240 }); });
  });
})();
