// Draws the charts of a page (core/_chart.html) with Chart.js: each canvas names the JSON
// script element that holds its data. Values show on hover and on keyboard focus; the
// table under each chart carries the same numbers for screen readers.
(function () {
  "use strict";

  function formatNumber(value, percent) {
    if (value === null || value === undefined) return "-";
    if (percent) return Math.round(value * 100) + "%";
    if (Math.abs(value) >= 10000) return Math.round(value).toLocaleString("en");
    return Number(value.toPrecision(4)).toLocaleString("en", { maximumFractionDigits: 4 });
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof window.Chart === "undefined") return;
    var spec = JSON.parse(source.textContent);
    var percentAxes = {};
    var scales = {};
    spec.axes.forEach(function (axis) {
      percentAxes[axis.id] = axis.percent;
      scales[axis.id] = {
        position: axis.id === "y2" ? "right" : "left",
        title: { display: !spec.sparkline && !!axis.title, text: axis.title },
        grid: { drawOnChartArea: axis.id !== "y2" },
        ticks: {
          callback: function (value) { return formatNumber(value, axis.percent); },
        },
      };
    });
    if (spec.sparkline) {
      scales = { x: { display: false }, y: { display: false } };
    } else {
      scales.x = { ticks: { autoSkip: true, maxRotation: 0 } };
    }
    new window.Chart(canvas, {
      type: "line",
      data: {
        labels: spec.labels,
        datasets: spec.series.map(function (series) {
          return {
            label: series.name,
            data: series.values,
            borderColor: series.color,
            backgroundColor: series.color,
            borderDash: series.dashed ? [6, 4] : [],
            borderWidth: 2,
            pointRadius: spec.sparkline ? 0 : 2,
            pointHoverRadius: 4,
            spanGaps: true,
            tension: 0,
            yAxisID: spec.sparkline ? "y" : series.axis,
            unit: series.unit,
          };
        }),
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: scales,
        plugins: {
          legend: { display: !spec.sparkline, position: "bottom", labels: { boxWidth: 24, boxHeight: 3 } },
          tooltip: {
            callbacks: {
              label: function (context) {
                var dataset = context.dataset;
                var percent = !!percentAxes[dataset.yAxisID];
                var text = formatNumber(context.parsed.y, percent);
                if (!percent && dataset.unit) text += " " + dataset.unit;
                return dataset.label + ": " + text;
              },
            },
          },
        },
      },
    });
  }

  function start() {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
