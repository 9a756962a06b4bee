// Draws every chart of a console page from its JSON block, with the Plotly bundled in the package.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("div[data-chart]").forEach(function (div) {
    var block = document.getElementById(div.dataset.chart);
    if (!block || typeof Plotly === "undefined") { return; }
    var data = JSON.parse(block.textContent);
    var traces = data.series.map(function (s) {
      return {name: s.name, x: s.x.map(function (t) { return new Date(t); }), y: s.y, type: "scatter", mode: "lines"};
    });
    Plotly.newPlot(div, traces, {
      title: {text: data.title}, margin: {t: 40, r: 10, b: 40, l: 50},
      yaxis: {title: {text: data.ylabel}, rangemode: "tozero"}, legend: {orientation: "h"}
    }, {displaylogo: false, responsive: true});
  });
});
